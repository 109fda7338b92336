; dot_relu.s: the demo. y = cvt.i32.i8(relu(x * w + b)) on int32 vectors, element by element,
; with the data streaming back and forth through the VXM four times.
;
; An int32 operand is a group of four byte streams (byte i on stream s+i) that must reach the
; VXM in the same cycle, and a MEM slice puts one word on one stream per cycle. So an int32
; vector lives *spread* over four slices at the same address (byte i in the i-th slice of the
; `.data [..]` list), and the four slices read their bytes in staggered cycles so that all four
; arrive together: for a VXM instruction in cycle V, MEM_Wi (i hops + 1 from the VXM) reads in
; cycle V - 2 - i, and so does MEM_Ei. A result in cycle V is in the VXM's output register at
; the end of V + 1 and reaches MEM_Wi / MEM_Ei (i + 1 hops) in cycle V + 2 + i, where each slice
; stores its byte, so results are spread the same way and can be read back.
;
;   pass 1 (V1): p = x * w        x from the west (e0..e3), w from the east (w0..w3) -> west
;   pass 2 (V2): s = p + b        p from the west, b from the east                   -> east
;   pass 3 (V3): r = relu(s)      s from the east                                    -> west
;   pass 4 (V4): y = cvt.i32.i8 r r from the west, saturated to int8, stored by MEM_E0 and
;                                 (3 hops later) by MEM_E3 at word 20
; Passes are 12 cycles apart: a slice's write commits at the end of the cycle after it issues,
; and the next pass reads that word no earlier than two cycles after the write.
;
; Lanes: x*w+b = 5, -12+20, -21-30, 200, -300+100, 1e6-1e6, 50000^2 (wraps to -1794967296),
; -45+40; relu -> 5, 8, 0, 200, 0, 0, 0, 0; int8 with saturation -> y = 5, 8, 0, 127, 0, 0, 0, 0.
; The program names only MEM_W0..3 and MEM_E0..3, so it also runs on `medium`.

.equ V1, 10                 ; the VXM's four instructions
.equ V2, V1 + 12
.equ V3, V2 + 12
.equ V4, V3 + 12

.equ X, 0                   ; word addresses (the same in every slice of a spread vector)
.equ WT, 0
.equ B, 4
.equ P, 8
.equ S, 12
.equ R, 16
.equ Y, 20

.data [MEM_W0, MEM_W1, MEM_W2, MEM_W3], X, i32: 1, -2, 3, 100, -100, 1000, 50000, -5
.data [MEM_E0, MEM_E1, MEM_E2, MEM_E3], WT, i32: 5, 6, -7, 2, 3, 1000, 50000, 9
.data [MEM_E0, MEM_E1, MEM_E2, MEM_E3], B, i32: 0, 20, -30, 0, 100, -1000000, 0, 40

.queue VXM
.at V1
    mul.i32 w4, e0, w0      ; p: westward group w4..w7
.at V2
    add.i32 e4, e0, w4      ; s: eastward group e4..e7
.at V3
    relu.i32 w4, w0         ; r: westward
.at V4
    cvt.i32.i8 e4, e0       ; y: one eastward byte stream, e4

.queue MEM_W0               ; byte 0 of x, p, r
.at V1 - 2
    read e0, X
.at V1 + 2
    write P, w4
.at V2 - 2
    read e0, P
.at V3 + 2
    write R, w4
.at V4 - 2
    read e0, R

.queue MEM_W1               ; byte 1
.at V1 - 3
    read e1, X
.at V1 + 3
    write P, w5
.at V2 - 3
    read e1, P
.at V3 + 3
    write R, w5
.at V4 - 3
    read e1, R

.queue MEM_W2               ; byte 2
.at V1 - 4
    read e2, X
.at V1 + 4
    write P, w6
.at V2 - 4
    read e2, P
.at V3 + 4
    write R, w6
.at V4 - 4
    read e2, R

.queue MEM_W3               ; byte 3
.at V1 - 5
    read e3, X
.at V1 + 5
    write P, w7
.at V2 - 5
    read e3, P
.at V3 + 5
    write R, w7
.at V4 - 5
    read e3, R

.queue MEM_E0               ; byte 0 of w, b, s; y
.at V1 - 2
    read w0, WT
.at V2 - 2
    read w4, B
.at V2 + 2
    write S, e4
.at V3 - 2
    read w0, S
.at V4 + 2
    write Y, e4

.queue MEM_E1               ; byte 1
.at V1 - 3
    read w1, WT
.at V2 - 3
    read w5, B
.at V2 + 3
    write S, e5
.at V3 - 3
    read w1, S

.queue MEM_E2               ; byte 2
.at V1 - 4
    read w2, WT
.at V2 - 4
    read w6, B
.at V2 + 4
    write S, e6
.at V3 - 4
    read w2, S

.queue MEM_E3               ; byte 3; and y again, 3 hops after MEM_E0
.at V1 - 5
    read w3, WT
.at V2 - 5
    read w7, B
.at V2 + 5
    write S, e7
.at V3 - 5
    read w3, S
.at V4 + 5
    write Y, e4
