; vxm_chain.s: ALU chaining. Requantisation q = cvt.i32.i8(relu(rshr(x * w, s))) as four VXM
; instructions two cycles apart: each of the last three takes operand `r`, the result of the VXM
; instruction two cycles before (VXM_CHAIN_DISTANCE = 2, docs/architecture.md section 8), so
; nothing goes back through memory. The cycles between are free for another chain (see
; gemm_requant.s, which interleaves two rows).
;
; x (int32) is spread over MEM_W0..3 (byte i in MEM_Wi), w = 3 over MEM_E0..3; both arrive at
; the VXM in cycle 10 (MEM_Xi is i + 1 hops away and reads in cycle 10 - 2 - i). The shift
; amount s = 3 arrives on w0..w3 in cycle 12 (read again two cycles later).
;   x * w        = 3000, -6000, 900000, 15, 18, 21, 24, 27
;   rshr by 3    = 375, -750, 112500, 2, 2, 3, 3, 3          (round half up)
;   relu         = 375, 0, 112500, 2, 2, 3, 3, 3
;   cvt.i32.i8   = 127, 0, 127, 2, 2, 3, 3, 3                 (saturating)
; The cvt in cycle 16 writes e4 at the end of 17; MEM_E0 (1 hop) stores it in cycle 18 at
; word 8. The intermediate results also leave on e4..e7 and are simply not read.

.data [MEM_W0, MEM_W1, MEM_W2, MEM_W3], 0, i32: 1000, -2000, 300000, 5, 6, 7, 8, 9
.data [MEM_E0, MEM_E1, MEM_E2, MEM_E3], 0, i32: 3, 3, 3, 3, 3, 3, 3, 3

.equ V, 10

.queue MEM_W0
.at V - 2
    read e0, 0
.queue MEM_W1
.at V - 3
    read e1, 0
.queue MEM_W2
.at V - 4
    read e2, 0
.queue MEM_W3
.at V - 5
    read e3, 0

.queue MEM_E0
.at V - 2
    read w0, 0              ; w, for the mul
.at V
    read w0, 0              ; s, for the rshr two cycles later
.at V + 8
    write 8, e4             ; q
.queue MEM_E1
.at V - 3
    read w1, 0
.at V - 1
    read w1, 0
.queue MEM_E2
.at V - 4
    read w2, 0
.at V - 2
    read w2, 0
.queue MEM_E3
.at V - 5
    read w3, 0
.at V - 3
    read w3, 0

.queue VXM
.at V
    mul.i32 e4, e0, w0
.at V + 2
    rshr.i32 e4, r, w0
.at V + 4
    relu.i32 e4, r
.at V + 6
    cvt.i32.i8 e4, r
