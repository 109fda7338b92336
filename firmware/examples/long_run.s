; long_run.s: 105,546 cycles of streaming work, for the speed benchmark.
;
; Every cycle from 0 to 105535 MEM_W3 reads word 0 onto e0 and MEM_W2 (one cycle later) a word
; onto e1; a read in cycle t reaches a slice h hops away in t + 1 + h, so MEM_W3's read of
; cycle t (4 hops) and MEM_W2's of t + 1 (3 hops) both reach the VXM in t + 5. The VXM
; multiplies the two int8 vectors every cycle from 5 to 105540, and MEM_E1 (2 hops east of the
; VXM) stores each product in word 0 three cycles after the VXM issued it. In
; parallel MEM_E3 reads word 0 onto w0 every cycle and MEM_W0 (5 hops west) stores it in word 0
; six cycles later: a long memory-to-memory copy in the other direction.
;
; `repeat n, 1` right after an instruction re-issues it in each of the next n cycles; n is at
; most 65535, so each stream takes two repeats. From cycle 65537 on MEM_W2 reads word 1 instead
; of word 0, so the final product (MEM_E1 word 0) is word 0 of MEM_W3 times word 1 of MEM_W2:
; 3*5, -4*6, 100*2 (wraps to -56), 7*-7, -128*-1 (wraps to -128), 11*11 (121), 0, 1.

.data MEM_W3, 0, i8: 3, -4, 100, 7, -128, 11, 0, 1
.data MEM_W2, 0, i8: 1, 1, 1, 1, 1, 1, 1, 1
.data MEM_W2, 1, i8: 5, 6, 2, -7, -1, 11, 9, 1
.data MEM_E3, 0, u8: 1, 2, 4, 8, 16, 32, 64, 128

.queue MEM_W3
    read e0, 0              ; cycle 0
    repeat 65535, 1         ; cycles 1..65535
    repeat 40000, 1         ; cycles 65536..105535

.queue MEM_W2
.at 1
    read e1, 0              ; cycle 1
    repeat 65535, 1         ; cycles 2..65536
    read e1, 1              ; cycle 65537
    repeat 39999, 1         ; cycles 65538..105536

.queue VXM
.at 5
    mul.i8 e2, e0, e1       ; cycle 5: MEM_W3's read of cycle 0, MEM_W2's of cycle 1
    repeat 65535, 1         ; cycles 6..65540
    repeat 40000, 1         ; cycles 65541..105540

.queue MEM_E1
.at 8
    write 0, e2             ; cycle 8 = 5 + 1 + 2 hops
    repeat 65535, 1
    repeat 40000, 1         ; last copy in cycle 105543

.queue MEM_E3
    read w0, 0
    repeat 65535, 1
    repeat 40000, 1

.queue MEM_W0
.at 6
    write 0, w0             ; cycle 6 = 0 + 1 + 5 hops
    repeat 65535, 1
    repeat 40000, 1
