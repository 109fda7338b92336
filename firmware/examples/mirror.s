; mirror.s: every MEM slice reads and writes: the two hemispheres swap their word 0 into each
; other's word 1 around the VXM.
;
; In cycle 0 MEM_Wi (position 5 - i) reads word 0 onto e<i> and MEM_Ei (position 7 + i) reads
; word 0 onto w<i>. Mirror slices are 2i + 2 hops apart, so MEM_Ei takes e<i> and MEM_Wi takes
; w<i> in cycle 0 + 1 + 2i + 2 = 3 + 2i (3, 5, 7, 9), both streams passing the VXM on the way.
; Afterwards word 1 of MEM_Wi holds MEM_Ei's word 0 and vice versa.

.data MEM_W0, 0, i8: 1, 2, 3, 4, 5, 6, 7, 8
.data MEM_W1, 0, i8: 11, 12, 13, 14, 15, 16, 17, 18
.data MEM_W2, 0, i8: 21, 22, 23, 24, 25, 26, 27, 28
.data MEM_W3, 0, i8: 31, 32, 33, 34, 35, 36, 37, 38
.data MEM_E0, 0, i8: -1, -2, -3, -4, -5, -6, -7, -8
.data MEM_E1, 0, i8: -11, -12, -13, -14, -15, -16, -17, -18
.data MEM_E2, 0, i8: -21, -22, -23, -24, -25, -26, -27, -28
.data MEM_E3, 0, i8: -31, -32, -33, -34, -35, -36, -37, -38

.queue MEM_W0
    read e0, 0
.at 3
    write 1, w0
.queue MEM_E0
    read w0, 0
.at 3
    write 1, e0

.queue MEM_W1
    read e1, 0
.at 5
    write 1, w1
.queue MEM_E1
    read w1, 0
.at 5
    write 1, e1

.queue MEM_W2
    read e2, 0
.at 7
    write 1, w2
.queue MEM_E2
    read w2, 0
.at 7
    write 1, e2

.queue MEM_W3
    read e3, 0
.at 9
    write 1, w3
.queue MEM_E3
    read w3, 0
.at 9
    write 1, e3
