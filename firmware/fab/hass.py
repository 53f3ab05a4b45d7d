# Home Assistant MQTT discovery: one retained config per telemetry field that Home Assistant can
# show, under <prefix>/sensor/<object_id>/config, so that a board appears as a device with its
# sensors and energy meters without any YAML. Totals come from the `production` and `energy`
# records, which count since the board's first boot (fab.tele); the `status` record gives the
# measurements only (its counters restart at each boot). Which fields become sensors is read
# from their names (the house's unit suffixes), so a new machine needs no table here:
#   *_kwh, *_wh   energy, shown in kWh, total_increasing (the Energy dashboard takes these)
#   *_w           power in W              soc        battery % (soc is 0..1 on the wire)
#   vbat, vsupply, *_v  voltage           *_a        current
#   temp, *_temp  temperature             units (production), in the record's unit:
#                                         total_increasing
# Plain Python, no hal: the host imports it to show what a board would announce.
import json

from fab import VERSION

_KINDS = ("status", "production", "energy")  # the rest (boot, piece) are events, not sensors
_MASS = ("g", "kg")


def spec(field, unit=None):
    """(unit, device_class, state_class, scale) for a field Home Assistant can show, or None;
    `unit` names what a production record counts."""
    if field == "units":
        return (unit, "weight" if unit in _MASS else None, "total_increasing", 1)
    if field.endswith("_kwh"):
        return ("kWh", "energy", "total_increasing", 1)
    if field.endswith("_wh"):
        return ("kWh", "energy", "total_increasing", 1000)
    if field.endswith("_w"):
        return ("W", "power", "measurement", 1)
    if field == "soc":
        return ("%", "battery", "measurement", -100)  # negative: multiply (0..1 -> %)
    if field in ("vbat", "vsupply") or field.endswith("_v"):
        return ("V", "voltage", "measurement", 1)
    if field.endswith("_a"):
        return ("A", "current", "measurement", 1)
    if field == "temp" or field.endswith("_temp"):
        return ("°C", "temperature", "measurement", 1)
    return None


def _label(field):
    # heater_wh -> "heater energy", gen_w -> "gen power", soc -> "battery"
    words = {"soc": "battery", "units": "production"}.get(field, field)
    for suffix, word in (("_kwh", "_energy"), ("_wh", "_energy"), ("_w", "_power")):
        if field.endswith(suffix):
            words = field[:-len(suffix)] + word
            break
    return words.replace("_", " ")  # the kind is in unique_id; Home Assistant groups by device


def configs(prefix, dev, name, model, kind, rec, skip=()):
    """[(topic, payload)] for the fields of one record that Home Assistant can show; `skip`:
    fields another record kind shows already (a status's soc, which the energy record has)."""
    base = "microfab/%s/" % dev
    device = {"identifiers": ["microfab_" + dev], "name": name, "manufacturer": "microfab",
              "model": model, "sw_version": VERSION}
    out: list = []
    if kind not in _KINDS:
        return out
    made = rec.get("unit")
    for field in rec:
        v = rec[field]
        s = spec(field, made if isinstance(made, str) else None)
        if s is None or isinstance(v, (bool, str, list, dict)) or field in skip:
            continue
        unit, dclass, sclass, scale = s
        if kind == "status" and sclass == "total_increasing":
            continue
        oid = "%s_%s_%s" % (dev, kind, field)
        tpl = "{{ value_json.%s }}" % field
        if scale > 1:
            tpl = "{{ (value_json.%s / %d) | round(6) }}" % (field, scale)
        elif scale < 0:
            tpl = "{{ (value_json.%s * %d) | round(2) }}" % (field, -scale)
        cfg = {"name": _label(field), "unique_id": oid, "state_topic": base + "tele/" + kind,
               "value_template": tpl, "state_class": sclass,
               "availability_topic": base + "status",
               "availability_template": "{{ value_json.state }}",
               "payload_available": "online", "payload_not_available": "offline",
               "device": device,
               "origin": {"name": "microfab", "sw_version": VERSION}}
        if unit:
            cfg["unit_of_measurement"] = unit
        if dclass:
            cfg["device_class"] = dclass
        out.append(("%s/sensor/%s/config" % (prefix, oid), json.dumps(cfg)))
    return out
