"""The board shell around the chip core (docs/fpga.md): :mod:`.shell` (``BoardTop`` and
``BridgedChip``), the UART host bridge (:mod:`.bridge`), the UART (:mod:`.uart`) and the ECP5
PLL (:mod:`.pll`)."""
