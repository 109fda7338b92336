; sxm_shift.s: the SXM's lane movements without tables and with the distribute table, on both
; SXMs. Lane i of a vector is lane i % 4 of superlane i // 4 (default: 2 superlanes x 4 lanes).
;
; SXM latency L = superlanes (2 on `default`): output superlane k of an SXM instruction issued
; in cycle t is in the SXM's output register at the end of cycle t + L + k, so the result is
; readable h hops away in cycle t + L + h (superlane 0's numbering, as for every unit). The SXM
; waits that long because lane movements cross superlanes: superlane 1 of the input only
; arrives in cycle t + 1.
;
; SXM_E (position 11) works on x = 1..8 from MEM_E3 (1 hop west of it) and sends its results
; west to MEM_E0 (4 hops), readable there in cycle t + 2 + 4:
;   shiftu w0, e0, 3   -> 0 0 0 1 2 3 4 5       (lanes move up, zero fill)
;   shiftd w1, e0, 2   -> 3 4 5 6 7 8 0 0       (lanes move down, zero fill)
;   rotate w2, e0, 5   -> 4 5 6 7 8 1 2 3       (up by 5, wrapping)
;   distribute w3, e0  with D = 0 0 9 3 | 1 1 1 1 -> 1 1 0 4 | 6 6 6 6
;                         (D[i] < 4: lane D[i] of i's superlane; else zero)
; SXM_W (position 1) transposes the 4 x 8 block held in word 0 of MEM_W0..MEM_W3 (row i in
; MEM_Wi, read onto the westward group w4..w7 so that all four arrive in cycle 8): stream e4+r
; lane 4b+c = row c lane 4b+r, i.e. each superlane's 4 x 4 block is transposed. MEM_Wi stores
; row i of the result in its word 12.
; cycles: 17

.equ X, 0
.equ D, 1
.equ OUT, 8
.equ T, 8                   ; the transpose
.equ TW, 12

.data MEM_E3, X, u8: 1, 2, 3, 4, 5, 6, 7, 8
.data MEM_E2, D, u8: 0, 0, 9, 3, 1, 1, 1, 1
.data MEM_W0, 0, u8: 0, 1, 2, 3, 4, 5, 6, 7
.data MEM_W1, 0, u8: 10, 11, 12, 13, 14, 15, 16, 17
.data MEM_W2, 0, u8: 20, 21, 22, 23, 24, 25, 26, 27
.data MEM_W3, 0, u8: 30, 31, 32, 33, 34, 35, 36, 37

.queue MEM_E2
    read e1, D              ; readable at SXM_E (2 hops) in cycle 3
.queue MEM_E3
.at 2
    read e0, X              ; readable at SXM_E in cycles 4, 5, 6, 7
    repeat 3, 1

.queue SXM_E
.at 3
    dist_load e1
    shiftu w0, e0, 3
    shiftd w1, e0, 2
    rotate w2, e0, 5
    distribute w3, e0

.queue MEM_E0               ; results of the instructions issued in 4..7, 6 cycles later
.at 10
    write OUT, w0
    write OUT + 1, w1
    write OUT + 2, w2
    write OUT + 3, w3

; The transpose: MEM_Wi is 4 - i hops east of SXM_W.
.queue MEM_W0
.at T - 5
    read w4, 0
.at TW + 2
    write TW, e4
.queue MEM_W1
.at T - 4
    read w5, 0
.at TW + 1
    write TW, e5
.queue MEM_W2
.at T - 3
    read w6, 0
.at TW
    write TW, e6
.queue MEM_W3
.at T - 2
    read w7, 0
.at TW - 1
    write TW, e7

.queue SXM_W
.at T
    transpose e4, w4        ; results readable at MEM_W3 in cycle T + 3, MEM_W0 in T + 6
