"""OpenTSP RTL in Amaranth 0.5.

* :mod:`.layouts` -- data layouts and instruction-field views derived from :mod:`opentsp.isa`
* :mod:`.fabric` -- :class:`~.fabric.StreamFabric`, every position's stream registers
* :mod:`.stagger` -- :class:`~.stagger.Stagger`, the per-slice superlane delay line
* :mod:`.icu` -- :class:`~.icu.InstructionQueue`, one slice's queue and sequencer
* :mod:`.mem` -- :class:`~.mem.MemSlice`, banked SRAM and the read/write pipelines
* :mod:`.vxm` -- :class:`~.vxm.VxmSlice`, the vector ALU
* :mod:`.mxm` -- :class:`~.mxm.MxmSlice`, the matrix unit (MAC array, accumulators)
* :mod:`.top` -- :class:`~.top.Chip`, the whole chip with its host port
* :mod:`.verilog` -- :func:`~.verilog.generate`, Verilog module ``tsp_top``
"""
