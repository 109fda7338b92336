; mem_stride.s: address sequencers (section 6a). Three instructions stream a strided tensor out
; of memory, one word per cycle, and one swrite stores a stream; MEM_E0 reads one word and
; commits one write every cycle for eight cycles, on alternating banks.
;
; MEM_W0 holds a 2 x 4 matrix by columns in words 0..7 (word 2c + r = element (r, c)). Its read
; sequencer walks it by rows: inner loop 4 addresses 2 apart, outer loop 2 rows 1 apart, so
; `sread e0, 0` in cycle 2 reads words 0, 2, 4, 6, 1, 3, 5, 7 in cycles 2..9 (element e in cycle
; 2 + e, readable 2 hops east at MEM_E0 in cycle 5 + e). MEM_E0's write sequence (8 addresses,
; stride 1), started by `swrite 16, e0` in cycle 5, stores them in words 16..23: the matrix by
; rows. Element e commits at the end of cycle 6 + e into bank (16 + e) % 2 = (6 + e) % 2.
;
; In the same cycles 6..13 MEM_E0's read sequence streams its words 33..40 west: the read of
; cycle c is word 27 + c, bank (c + 1) % 2, never the bank of that cycle's commit (rule 3).
; MEM_W0 (2 hops west, cycles 9..16) stores them in its words 40..47.
.config default

.data MEM_W0, 0, i8: 0, 1, 2, 3, 4, 5, 6, 7          ; (0, 0)
.data MEM_W0, 1, i8: 10, 11, 12, 13, 14, 15, 16, 17  ; (1, 0)
.data MEM_W0, 2, i8: 20, 21, 22, 23, 24, 25, 26, 27  ; (0, 1)
.data MEM_W0, 3, i8: 30, 31, 32, 33, 34, 35, 36, 37  ; (1, 1)
.data MEM_W0, 4, i8: 40, 41, 42, 43, 44, 45, 46, 47  ; (0, 2)
.data MEM_W0, 5, i8: 50, 51, 52, 53, 54, 55, 56, 57  ; (1, 2)
.data MEM_W0, 6, i8: 60, 61, 62, 63, 64, 65, 66, 67  ; (0, 3)
.data MEM_W0, 7, i8: 70, 71, 72, 73, 74, 75, 76, 77  ; (1, 3)
.data MEM_E0, 33, i8: -1, -1, -1, -1, -1, -1, -1, -1
.data MEM_E0, 34, i8: -2, -2, -2, -2, -2, -2, -2, -2
.data MEM_E0, 35, i8: -3, -3, -3, -3, -3, -3, -3, -3
.data MEM_E0, 36, i8: -4, -4, -4, -4, -4, -4, -4, -4
.data MEM_E0, 37, i8: -5, -5, -5, -5, -5, -5, -5, -5
.data MEM_E0, 38, i8: -6, -6, -6, -6, -6, -6, -6, -6
.data MEM_E0, 39, i8: -7, -7, -7, -7, -7, -7, -7, -7
.data MEM_E0, 40, i8: -8, -8, -8, -8, -8, -8, -8, -8

.queue MEM_W0
    agi 0, 2, 4             ; read sequencer: 4 addresses, stride 2
    ago 0, 1, 2             ; ... 2 rows, row stride 1
    sread e0, 0             ; cycle 2: words 0 2 4 6 1 3 5 7 in cycles 2..9
    agi 1, 1, 8             ; write sequencer: 8 addresses, stride 1 (outer loop: reset, 1 row)
.at 9
    swrite 40, w0           ; cycles 9..16: MEM_E0's words 33..40 into 40..47
.at 17                      ; end in cycle 17: the last element (cycle 16) has issued

.queue MEM_E0
    agi 1, 1, 8
    agi 0, 1, 8
.at 5
    swrite 16, e0           ; cycles 5..12, commits at the end of 6..13
    sread w0, 33            ; cycles 6..13: one read and one commit per cycle, other bank
.at 14
