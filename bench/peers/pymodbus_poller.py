"""The peer of the collector benchmark: a pymodbus 3.x asyncio client polling every device of a
collector configuration once per poll interval, with the same requests our collector makes
(points merged into reads within the device's register cap, never across gaps), and decoding
nothing beyond what pymodbus returns.

Usage: python pymodbus_poller.py CONFIG.toml SECONDS
Prints: reads=N errors=N wall_s=F cpu_s=F
"""

import asyncio
import sys
import time
import tomllib

from pymodbus.client import AsyncModbusTcpClient

WIDTH = {"u16": 1, "i16": 1, "bool": 1, "u32": 2, "i32": 2, "f32": 2, "u64": 4, "i64": 4, "f64": 4}


def plan(device):
    cap = device.get("max_registers_per_request", 125)
    reqs = []
    for p in sorted(device["point"], key=lambda p: (p["register"], p["address"])):
        bit = p["register"] in ("coil", "discrete")
        width = 1 if bit else WIDTH[p["type"]]
        limit = 2000 if bit else cap
        end = p["address"] + width
        if reqs and reqs[-1][0] == p["register"] and p["address"] <= reqs[-1][1] + reqs[-1][2] \
                and max(end, reqs[-1][1] + reqs[-1][2]) - reqs[-1][1] <= limit:
            reqs[-1][2] = max(end, reqs[-1][1] + reqs[-1][2]) - reqs[-1][1]
        else:
            reqs.append([p["register"], p["address"], width])
    return reqs


async def poll(device, deadline, counts):
    host, port = device["address"].rsplit(":", 1)
    client = AsyncModbusTcpClient(host, port=int(port), timeout=1, retries=0)
    await client.connect()
    unit = device.get("unit_id", 1)
    interval = device.get("poll_interval_ms", 1000) / 1000
    reqs = plan(device)
    calls = {
        "coil": client.read_coils,
        "discrete": client.read_discrete_inputs,
        "holding": client.read_holding_registers,
        "input": client.read_input_registers,
    }
    next_due = time.monotonic()
    while time.monotonic() < deadline:
        for register, address, count in reqs:
            try:
                rr = await calls[register](address, count=count, device_id=unit)
                counts["reads"] += 1
                counts["errors"] += int(rr.isError())
            except Exception:  # noqa: BLE001 - a benchmark counts failures, it does not stop
                counts["errors"] += 1
        next_due += interval
        await asyncio.sleep(max(0.0, next_due - time.monotonic()))
    client.close()


async def main(path, seconds):
    with open(path, "rb") as f:
        config = tomllib.load(f)
    counts = {"reads": 0, "errors": 0}
    start, cpu0 = time.monotonic(), time.process_time()
    deadline = start + seconds
    await asyncio.gather(*(poll(d, deadline, counts) for d in config["device"]))
    wall, cpu = time.monotonic() - start, time.process_time() - cpu0
    print(f"reads={counts['reads']} errors={counts['errors']} wall_s={wall:.1f} cpu_s={cpu:.2f}")


asyncio.run(main(sys.argv[1], float(sys.argv[2])))
