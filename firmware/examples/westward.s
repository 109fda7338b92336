; westward.s: a computation flowing from east to west.
;
; MEM_E3 (4 hops east of the VXM) reads x onto w0 in cycles 3 and 4, and MEM_E2 (3 hops) reads y
; onto w1 in cycles 4 and 5, so both reach the VXM in cycles 8 and 9 (t + 1 + hops). The VXM
; computes x - y in cycle 8 and max(x, y) in cycle 9 onto w2; MEM_W0 (1 hop west) stores them
; in cycles 10 and 11 (words 0 and 1), MEM_W3 (4 hops) in 13 and 14.
;
; x = 50, -50, 127, -128, 0, 1, 2, 3 and y = -100, 100, -1, 1, 0, 1, 3, 2:
;   x - y = -106 (150 wraps), 106 (-150 wraps), -128 (128 wraps), 127 (-129 wraps), 0, 0, -1, 1
;   max   = 50, 100, 127, 1, 0, 1, 3, 3

.data MEM_E3, 0, i8: 50, -50, 127, -128, 0, 1, 2, 3
.data MEM_E2, 0, i8: -100, 100, -1, 1, 0, 1, 3, 2

.queue MEM_E3
.at 3
    read w0, 0              ; cycle 3
    repeat 1, 1             ; cycle 4

.queue MEM_E2
.at 4
    read w1, 0              ; cycle 4
    repeat 1, 1             ; cycle 5

.queue VXM
.at 8
    sub.i8 w2, w0, w1       ; cycle 8
    max.i8 w2, w0, w1       ; cycle 9

.queue MEM_W0
.at 10
    write 0, w2
    write 1, w2

.queue MEM_W3
.at 13
    write 0, w2
    write 1, w2
