; vxm_i32.s: every int32 VXM operation, and both conversions between int8 and int32.
;
; a is spread over MEM_W0..MEM_W3 (byte i in MEM_Wi, word 0) and b over MEM_E0..MEM_E3. For a
; VXM instruction in cycle V, MEM_Wi and MEM_Ei (i + 1 hops from the VXM) read their byte in
; cycle V - 2 - i, so the four bytes of a (e0..e3) and of b (w0..w3) reach the VXM in cycle V.
; Each result goes west on w4..w7 and MEM_Wi stores byte i in cycle V + 2 + i (word 4 + k for
; operation k), spread like a. Operations are 12 cycles apart (V = 10, 22, ..., 94) so that a
; slice's write (V + 2 + i) comes before its next read (V + 10 - i).
;
; a = 1, -1, 70000, -70000, 2147483647, -2147483648, 300, -300
; b = 2, 5, 70000, 3, 1, 1, -300, 200
;   add  (word 4)  3, 4, 140000, -69997, -2147483648 (wraps), -2147483647, 0, -100
;   sub  (word 5)  -1, -6, 0, -70003, 2147483646, 2147483647 (wraps), 600, -500
;   mul  (word 6)  2, -5, 605032704 (70000^2 mod 2^32), -210000, 2147483647, -2147483648,
;                  -90000, -60000
;   min  (word 7), max (word 8), relu (word 9)
;   cvt.i32.i8 (word 10, in MEM_W0 only: one byte) saturates: 1, -1, 127, -128, 127, -128,
;                  127, -128
;   cvt.i8.i32 (word 11) sign-extends byte 0 of a as int8: 1, -1, 112, -112, -1, 0, 44, -44

.data [MEM_W0, MEM_W1, MEM_W2, MEM_W3], 0, i32: 1, -1, 70000, -70000, 2147483647, -2147483648, 300, -300
.data [MEM_E0, MEM_E1, MEM_E2, MEM_E3], 0, i32: 2, 5, 70000, 3, 1, 1, -300, 200

.equ V0, 10 + 12 * 0
.equ V1, 10 + 12 * 1
.equ V2, 10 + 12 * 2
.equ V3, 10 + 12 * 3
.equ V4, 10 + 12 * 4
.equ V5, 10 + 12 * 5
.equ V6, 10 + 12 * 6
.equ V7, 10 + 12 * 7

.queue VXM
.at V0
    add.i32 w4, e0, w0
.at V1
    sub.i32 w4, e0, w0
.at V2
    mul.i32 w4, e0, w0
.at V3
    min.i32 w4, e0, w0
.at V4
    max.i32 w4, e0, w0
.at V5
    relu.i32 w4, e0
.at V6
    cvt.i32.i8 w4, e0
.at V7
    cvt.i8.i32 w4, e0

.queue MEM_W0
.at V0 - 2 - 0
    read e0, 0
.at V0 + 2 + 0
    write 4 + 0, w4
.at V1 - 2 - 0
    read e0, 0
.at V1 + 2 + 0
    write 4 + 1, w4
.at V2 - 2 - 0
    read e0, 0
.at V2 + 2 + 0
    write 4 + 2, w4
.at V3 - 2 - 0
    read e0, 0
.at V3 + 2 + 0
    write 4 + 3, w4
.at V4 - 2 - 0
    read e0, 0
.at V4 + 2 + 0
    write 4 + 4, w4
.at V5 - 2 - 0
    read e0, 0
.at V5 + 2 + 0
    write 4 + 5, w4
.at V6 - 2 - 0
    read e0, 0
.at V6 + 2 + 0
    write 4 + 6, w4
.at V7 - 2 - 0
    read e0, 0
.at V7 + 2 + 0
    write 4 + 7, w4

.queue MEM_W1
.at V0 - 2 - 1
    read e1, 0
.at V0 + 2 + 1
    write 4 + 0, w5
.at V1 - 2 - 1
    read e1, 0
.at V1 + 2 + 1
    write 4 + 1, w5
.at V2 - 2 - 1
    read e1, 0
.at V2 + 2 + 1
    write 4 + 2, w5
.at V3 - 2 - 1
    read e1, 0
.at V3 + 2 + 1
    write 4 + 3, w5
.at V4 - 2 - 1
    read e1, 0
.at V4 + 2 + 1
    write 4 + 4, w5
.at V5 - 2 - 1
    read e1, 0
.at V5 + 2 + 1
    write 4 + 5, w5
.at V6 - 2 - 1
    read e1, 0
.at V7 - 2 - 1
    read e1, 0
.at V7 + 2 + 1
    write 4 + 7, w5

.queue MEM_W2
.at V0 - 2 - 2
    read e2, 0
.at V0 + 2 + 2
    write 4 + 0, w6
.at V1 - 2 - 2
    read e2, 0
.at V1 + 2 + 2
    write 4 + 1, w6
.at V2 - 2 - 2
    read e2, 0
.at V2 + 2 + 2
    write 4 + 2, w6
.at V3 - 2 - 2
    read e2, 0
.at V3 + 2 + 2
    write 4 + 3, w6
.at V4 - 2 - 2
    read e2, 0
.at V4 + 2 + 2
    write 4 + 4, w6
.at V5 - 2 - 2
    read e2, 0
.at V5 + 2 + 2
    write 4 + 5, w6
.at V6 - 2 - 2
    read e2, 0
.at V7 - 2 - 2
    read e2, 0
.at V7 + 2 + 2
    write 4 + 7, w6

.queue MEM_W3
.at V0 - 2 - 3
    read e3, 0
.at V0 + 2 + 3
    write 4 + 0, w7
.at V1 - 2 - 3
    read e3, 0
.at V1 + 2 + 3
    write 4 + 1, w7
.at V2 - 2 - 3
    read e3, 0
.at V2 + 2 + 3
    write 4 + 2, w7
.at V3 - 2 - 3
    read e3, 0
.at V3 + 2 + 3
    write 4 + 3, w7
.at V4 - 2 - 3
    read e3, 0
.at V4 + 2 + 3
    write 4 + 4, w7
.at V5 - 2 - 3
    read e3, 0
.at V5 + 2 + 3
    write 4 + 5, w7
.at V6 - 2 - 3
    read e3, 0
.at V7 - 2 - 3
    read e3, 0
.at V7 + 2 + 3
    write 4 + 7, w7

.queue MEM_E0
.at V0 - 2 - 0
    read w0, 0
.at V1 - 2 - 0
    read w0, 0
.at V2 - 2 - 0
    read w0, 0
.at V3 - 2 - 0
    read w0, 0
.at V4 - 2 - 0
    read w0, 0

.queue MEM_E1
.at V0 - 2 - 1
    read w1, 0
.at V1 - 2 - 1
    read w1, 0
.at V2 - 2 - 1
    read w1, 0
.at V3 - 2 - 1
    read w1, 0
.at V4 - 2 - 1
    read w1, 0

.queue MEM_E2
.at V0 - 2 - 2
    read w2, 0
.at V1 - 2 - 2
    read w2, 0
.at V2 - 2 - 2
    read w2, 0
.at V3 - 2 - 2
    read w2, 0
.at V4 - 2 - 2
    read w2, 0

.queue MEM_E3
.at V0 - 2 - 3
    read w3, 0
.at V1 - 2 - 3
    read w3, 0
.at V2 - 2 - 3
    read w3, 0
.at V3 - 2 - 3
    read w3, 0
.at V4 - 2 - 3
    read w3, 0
