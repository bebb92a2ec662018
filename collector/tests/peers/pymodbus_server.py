"""A Modbus TCP server built on pymodbus (3.x), an implementation independent of ours, serving
known values for the collector's interop test.

Usage: python pymodbus_server.py PORT

Unit 1 serves, in holding registers (protocol addresses; its documentation would number them
from 1):
  0..7    f32 123.25 in the orders abcd, cdab, badc, dcba (2 registers each)
  8..15   u32 0x12345678 in the same four orders
  16..23  i32 -123456 in the same four orders
  24..39  u64 0x0102030405060708 in the same four orders (4 registers each)
  40..55  f64 -1234.5678 in the same four orders
  60..159 u16 1000+i, a long block
  160     u16 0b1010_0000_0000_0101 (bits)
  170..175 the string "MIZUMORI-01"
Input registers: 0 i16 -250. Coils 0..7: 1 0 1 1 0 0 0 1.
Reads of more than 50 registers are refused with exception 03, as some devices do; addresses
not listed answer exception 02; unit ids other than 1 answer exception 04 (pymodbus's default).

pymodbus encodes the values (convert_to_registers, big or little word order); the byte-swapped
orders swap the bytes of each of its registers.
"""

import asyncio
import sys

from pymodbus.client.mixin import ModbusClientMixin
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

DT = ModbusClientMixin.DATATYPE


def encode(value, data_type, order):
    word_order = "little" if order in ("cdab", "dcba") else "big"
    regs = ModbusClientMixin.convert_to_registers(value, data_type, word_order=word_order)
    if order in ("badc", "dcba"):
        regs = [((r & 0xFF) << 8) | (r >> 8) for r in regs]
    return regs


def holding():
    regs = {}
    orders = ["abcd", "cdab", "badc", "dcba"]
    for base, value, data_type, width in [
        (0, 123.25, DT.FLOAT32, 2),
        (8, 0x12345678, DT.UINT32, 2),
        (16, -123456, DT.INT32, 2),
        (24, 0x0102030405060708, DT.UINT64, 4),
        (40, -1234.5678, DT.FLOAT64, 4),
    ]:
        for k, order in enumerate(orders):
            for j, r in enumerate(encode(value, data_type, order)):
                regs[base + k * width + j] = r
    for i in range(100):
        regs[60 + i] = 1000 + i
    regs[160] = 0b1010_0000_0000_0101
    for j, r in enumerate(ModbusClientMixin.convert_to_registers("MIZUMORI-01\0", DT.STRING)):
        regs[170 + j] = r
    blocks, start, values = [], None, []
    for addr in sorted(regs):
        if start is not None and addr == start + len(values):
            values.append(regs[addr])
            continue
        if start is not None:
            blocks.append(SimData(start, values=values, datatype=DataType.REGISTERS))
        start, values = addr, [regs[addr]]
    blocks.append(SimData(start, values=values, datatype=DataType.REGISTERS))
    return blocks


async def cap(function_code, start_address, address, count, current_registers, set_values):
    if function_code in (3, 4) and count > 50:
        return ExcCodes.ILLEGAL_VALUE
    return None


async def main(port):
    device = SimDevice(
        id=1,
        simdata=(
            [SimData(0, values=[True, False, True, True, False, False, False, True], datatype=DataType.BITS)],
            [SimData(0, values=[False] * 8, datatype=DataType.BITS)],
            holding(),
            [SimData(0, values=[(-250) & 0xFFFF], datatype=DataType.REGISTERS)],
        ),
        action=cap,
    )
    server = ModbusTcpServer(device, address=("127.0.0.1", port))
    print("READY", flush=True)
    await server.serve_forever()


asyncio.run(main(int(sys.argv[1])))
