; requant.s: requantise an int32 vector (say, matrix-multiply accumulators) to int8 with a
; per-lane (per-channel) multiplier M and shift S, then mark the small results with a select:
;
;   q = cvt.i32.i8(relu(rshr(mulh(x, M), S)))   ~ clamp(round(x * M / 2^(32 + S)), 0, 127)
;   y = q where q > T else F                     with T = 2, F = -1 in every lane
;
; The select has no branch: mask = cmpgt(q, T) is -1 (all ones) or 0 per lane, and
; y = F ^ ((q ^ F) & mask). M is a Q31 fraction (1518500250 = 0.7071 * 2^31, 1073741824 = 0.5,
; 1288490189 = 0.6), so mulh(x, M) = floor(x * M / 2^32) is x times half that fraction, and rshr
; divides by 2^S with rounding (lane 1: 2.76 rounds to 3 and survives the select; a truncating
; shift would give 2 and then -1; lane 6, with S = 9: 0.998 rounds to 1).
;
; int32 operands are spread over four MEM slices and timed as in dot_relu.s: for a VXM
; instruction in cycle V, MEM_Wi and MEM_Ei read byte i in cycle V - 2 - i; a result in cycle V
; reaches MEM_Wi / MEM_Ei in cycle V + 2 + i. The int8 passes use single streams: MEM_W0 and
; MEM_E0 read in V - 2, MEM_W1 in V - 3, and a result reaches MEM_W0 / MEM_E0 in V + 2 and
; MEM_W1 in V + 3. A pass reads a word no earlier than two cycles after its write issued.
;
;   V1       mulh.i32   p = mulh(x, M)   x from the west, M from the east        -> west, P
;   V2       rshr.i32   r = rshr(p, S)   p from the west, S from the east        -> east, R
;   V3       relu.i32   u = relu(r)      r from the east                         -> west, U
;   V4       cvt.i32.i8 q = cvt(u)       u from the west                         -> MEM_E0, Q
;   V5       cmpgt.i8   k = q > T        q from MEM_E0, T from MEM_W0            -> MEM_W1, K
;   V5 + 1   xor.i8     d = q ^ F        q from MEM_E0, F from MEM_W1            -> MEM_W0, D
;   V6       and.i8     g = d & k        d from MEM_W0, k from MEM_W1            -> MEM_E0, G
;   V7       xor.i8     y = F ^ g        F from MEM_W1, g from MEM_E0            -> MEM_E0, Y
;
; Lanes (computed with numpy):
;   x       = 289626, 8000, 2147483647, -2147483648, 144000, 5800, 1448, -300000
;   mulh    = 102398, 2828, 536870911, -1073741824, 50911, 2050, 511, -90001
;   rshr    = 100, 3, 524288, -1048576, 50, 2, 1, -88
;   relu    = 100, 3, 524288, 0, 50, 2, 1, 0
;   q       = 100, 3, 127, 0, 50, 2, 1, 0                   (MEM_E0 word 20)
;   mask    = -1, -1, -1, 0, -1, 0, 0, 0                     (MEM_W1 word 28)
;   y       = 100, 3, 127, -1, 50, -1, -1, -1                (MEM_E0 word 36)

.config default

.equ V1, 10                 ; the VXM's instructions
.equ V2, V1 + 12
.equ V3, V2 + 12
.equ V4, V3 + 12
.equ V5, V4 + 6
.equ V6, V5 + 8
.equ V7, V6 + 6

.equ X, 0                   ; word addresses (the same in every slice of a spread vector)
.equ MM, 0
.equ SH, 4
.equ P, 8
.equ R, 12
.equ U, 16
.equ Q, 20
.equ T, 24                  ; MEM_W0
.equ F, 24                  ; MEM_W1
.equ K, 28                  ; MEM_W1
.equ D, 28                  ; MEM_W0
.equ G, 32
.equ Y, 36

.data [MEM_W0, MEM_W1, MEM_W2, MEM_W3], X, i32: 289626, 8000, 2147483647, -2147483648, \
                                                144000, 5800, 1448, -300000
.data [MEM_E0, MEM_E1, MEM_E2, MEM_E3], MM, i32: 1518500250, 1518500250, 1073741824, \
                                                 2147483647, 1518500250, 1518500250, \
                                                 1518500250, 1288490189
.data [MEM_E0, MEM_E1, MEM_E2, MEM_E3], SH, i32: 10, 10, 10, 10, 10, 10, 9, 10
.data MEM_W0, T, i8: 2, 2, 2, 2, 2, 2, 2, 2
.data MEM_W1, F, i8: -1, -1, -1, -1, -1, -1, -1, -1

.queue VXM
.at V1
    mulh.i32 w4, e0, w0     ; p: westward group w4..w7
.at V2
    rshr.i32 e4, e0, w0     ; r: eastward group e4..e7
.at V3
    relu.i32 w4, w0         ; u: westward
.at V4
    cvt.i32.i8 e4, e0       ; q: one eastward byte stream, e4
.at V5
    cmpgt.i8 w4, w0, e0     ; mask = q > T
    xor.i8 w5, w0, e1       ; d = q ^ F (in V5 + 1)
.at V6
    and.i8 e4, e0, e1       ; g = d & mask
.at V7
    xor.i8 e4, e1, w0       ; y = F ^ g

.queue MEM_W0               ; byte 0 of x, p, u; T; d
.at V1 - 2
    read e0, X
.at V1 + 2
    write P, w4
.at V2 - 2
    read e0, P
.at V3 + 2
    write U, w4
.at V4 - 2
    read e0, U
.at V5 - 2
    read e0, T
.at V5 + 3
    write D, w5
.at V6 - 2
    read e0, D

.queue MEM_W1               ; byte 1 of x, p, u; F; mask
.at V1 - 3
    read e1, X
.at V1 + 3
    write P, w5
.at V2 - 3
    read e1, P
.at V3 + 3
    write U, w5
.at V4 - 3
    read e1, U
.at V5 + 1 - 3
    read e1, F
.at V5 + 3
    write K, w4
.at V6 - 3
    read e1, K
.at V7 - 3
    read e1, F

.queue MEM_W2               ; byte 2
.at V1 - 4
    read e2, X
.at V1 + 4
    write P, w6
.at V2 - 4
    read e2, P
.at V3 + 4
    write U, w6
.at V4 - 4
    read e2, U

.queue MEM_W3               ; byte 3
.at V1 - 5
    read e3, X
.at V1 + 5
    write P, w7
.at V2 - 5
    read e3, P
.at V3 + 5
    write U, w7
.at V4 - 5
    read e3, U

.queue MEM_E0               ; byte 0 of M, S, r; q, g, y
.at V1 - 2
    read w0, MM
.at V2 - 2
    read w0, SH
.at V2 + 2
    write R, e4
.at V3 - 2
    read w0, R
.at V4 + 2
    write Q, e4
.at V5 - 2
    read w0, Q              ; for cmpgt
    read w0, Q              ; for xor, one cycle later
.at V6 + 2
    write G, e4
.at V7 - 2
    read w0, G
.at V7 + 2
    write Y, e4

.queue MEM_E1               ; byte 1
.at V1 - 3
    read w1, MM
.at V2 - 3
    read w1, SH
.at V2 + 3
    write R, e5
.at V3 - 3
    read w1, R

.queue MEM_E2               ; byte 2
.at V1 - 4
    read w2, MM
.at V2 - 4
    read w2, SH
.at V2 + 4
    write R, e6
.at V3 - 4
    read w2, R

.queue MEM_E3               ; byte 3
.at V1 - 5
    read w3, MM
.at V2 - 5
    read w3, SH
.at V2 + 5
    write R, e7
.at V3 - 5
    read w3, R
