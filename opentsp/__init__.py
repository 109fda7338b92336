"""OpenTSP, an open Tensor Streaming Processor.

The modules directly in this package are the specification floor (docs/layers.md) that the
golden model (:mod:`opentsp.sim`), the RTL (:mod:`opentsp.hdl`), the firmware tools
(:mod:`opentsp.firmware`) and the compiler (:mod:`opentsp.compiler`) stand on: :mod:`.isa`,
:mod:`.config`, :mod:`.queue_timing`, :mod:`.mem_sequence`, :mod:`.packing`, :mod:`.secded`,
:mod:`.hostmap`, :mod:`.host_protocol` and :mod:`.bridge_protocol`. Importing ``opentsp``
imports none of them.
"""
