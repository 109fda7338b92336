"""Applications on top of every layer (docs/layers.md): the command line (:mod:`.cli`), the
digits demo (:mod:`.demo`, :mod:`.digits`), the FPGA flow (:mod:`.fpga`), synthesis
(:mod:`.synth`), the schedule plot (:mod:`.schedule_plot`) and the board host program
(:mod:`.board`)."""
