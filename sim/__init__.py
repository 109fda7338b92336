"""The golden model (``opentsp.sim``): cycle-exact, numpy, one function per opcode.

:mod:`.model` (the chip, cycle by cycle), :mod:`.icu` (the instruction queues), :mod:`.alu` (VXM
arithmetic), :mod:`.mxm`, :mod:`.sxm`, :mod:`.mem` (gather/scatter, sequencers, the SECDED SRAM
with fault injection), :mod:`.session` (one load, many starts: a program run again and again on
the memories it left). It stands on the specification floor (:mod:`opentsp.isa`,
:mod:`opentsp.queue_timing`, :mod:`opentsp.mem_sequence`, :mod:`opentsp.packing`,
:mod:`opentsp.secded`) and imports nothing of the RTL.
"""
