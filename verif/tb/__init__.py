"""cocotb testbenches: :mod:`.chip` (the chip through its host port) and :mod:`.bridge` (the chip
through its UART bridge), each run by :mod:`opentsp.verif.runner` with a job file."""
