"""OpenTSP RTL in Amaranth 0.5 (``opentsp.hdl``): the chip core; the board shell is in
:mod:`.board`. It stands on the specification floor (:mod:`opentsp.isa`, :mod:`opentsp.config`,
:mod:`opentsp.hostmap`, :mod:`opentsp.secded`) and never imports the golden model.

* :mod:`.layouts` -- data layouts and instruction-field views derived from :mod:`opentsp.isa`
* :mod:`.slice` -- :class:`~.slice.FunctionalSlice`, the ports every functional slice shares
* :mod:`.fabric` -- :class:`~.fabric.StreamFabric`, every position's stream registers
* :mod:`.stagger` -- :class:`~.stagger.Stagger`, the per-slice superlane delay line
* :mod:`.icu` -- :class:`~.icu.InstructionQueue`, one slice's queue and sequencer, and the
  :class:`~.icu.NotifyBus`
* :mod:`.mem` -- :class:`~.mem.MemSlice`, built from its parts: :mod:`.mem_address` (bank and
  row geometry, gather/scatter addresses), :mod:`.mem_sequencer` (the two address sequencers),
  :mod:`.mem_read` and :mod:`.mem_write` (the read and write pipelines), :mod:`.mem_bank` (the
  SRAM banks of each lane with the SECDED codec), :mod:`.mem_inject` (fault injection),
  :mod:`.mem_host` (host access)
* :mod:`.ecc` -- :class:`~.ecc.Secded`, the SECDED (13,8) codec of one lane
* :mod:`.vxm` -- :class:`~.vxm.VxmSlice`, the vector ALU
* :mod:`.mxm` -- :class:`~.mxm.MxmSlice`, the matrix unit (MAC array, accumulators), with
  :mod:`.mxm_sequencer` (its load, compute and drain sequencers) and :mod:`.mxm_float` (the
  floating-point mode's exact products, wide sums and rounding to f32)
* :mod:`.sxm` -- :class:`~.sxm.SxmSlice`, the switch unit (shifts, permute, distribute,
  transpose)
* :mod:`.top` -- :class:`~.top.Chip`, the whole chip: slices, queues and fabric wired together;
  its host port, control and status registers, fault injection and readback in
  :mod:`.host_port`
* :mod:`.verilog` -- :func:`~.verilog.generate`, Verilog module ``tsp_top``
"""
