; vxm_i8.s: every int8 VXM operation on the same two vectors, one per cycle.
;
; MEM_W1 (2 hops west of the VXM) reads a onto e0 in cycles 7..12 and MEM_W0 (1 hop) reads b
; onto e1 in cycles 8..13, so both reach the VXM together in cycles 10..15 (t + 1 + hops). The
; VXM issues add, sub, mul, min, max, relu in cycles 10..15; each result reaches MEM_E0 (1 hop
; east) two cycles later, in 12..17, which stores it in words 0..5.
;
; a = 100, -100, 127, -128, 16, -3, 0, 7 and b = 100, 100, 1, 1, 16, 5, -1, -7:
;   add  -56, 0, -128, -127, 32, 2, -1, 0        (wraps: 100 + 100 = 200 - 256)
;   sub  0, -200 -> 56, 126, 127 (-129 wraps), 0, -8, 1, 14
;   mul  16 (10000 mod 256), -16, 127, -128, 0 (256), -15, 0, -49
;   min  100, -100, 1, -128, 16, -3, -1, -7      max 100, 100, 127, 1, 16, 5, 0, 7
;   relu 100, 0, 127, 0, 16, 0, 0, 7

.data MEM_W1, 0, i8: 100, -100, 127, -128, 16, -3, 0, 7
.data MEM_W0, 0, i8: 100, 100, 1, 1, 16, 5, -1, -7

.queue MEM_W1
.at 7
    read e0, 0              ; cycle 7
    repeat 5, 1             ; cycles 8..12

.queue MEM_W0
.at 8
    read e1, 0              ; cycle 8
    repeat 5, 1             ; cycles 9..13

.queue VXM
.at 10
    add.i8 e2, e0, e1       ; cycle 10
    sub.i8 e2, e0, e1       ; 11
    mul.i8 e2, e0, e1       ; 12
    min.i8 e2, e0, e1       ; 13
    max.i8 e2, e0, e1       ; 14
    relu.i8 e2, e0          ; 15
    end

.queue MEM_E0
.at 12
    write 0, e2             ; cycle 12: add
    write 1, e2             ; sub
    write 2, e2             ; mul
    write 3, e2             ; min
    write 4, e2             ; max
    write 5, e2             ; relu
