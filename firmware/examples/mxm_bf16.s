; mxm_bf16.s: the MXM's floating-point mode (docs/architecture.md section 7c). y = W x with
; bf16 weights W (4 x 4) and a bf16 vector x on MXM_W, the products summed exactly and rounded
; once to f32 by acc.f32.
;
; Each bf16 value travels on a stream pair: byte 0 on w0 from MEM_W0 (5 hops from MXM_W),
; byte 1 on w1 from MEM_W1 (4 hops), so MEM_W1 reads one cycle after MEM_W0 and both bytes
; reach MXM_W together, readable there in cycle c + 6 for a MEM_W0 read in cycle c.
;   cycles 6..9   lw.bf16 loads row j of W (word j) in cycle 6 + j
;   cycle 10      iw installs W
;   cycle 11      abc.bf16 multiplies x (word 4)
;   cycle 13      acc.f32 drains y onto e4..e7: byte i is stored by MEM_Wi at word 8 (two
;                 cycles after the abc, so that it has landed on a span of two superlanes too)
; x = 2**30, 1, -2**30, 2.5. Rows 0 and 1 show the exact sum: 2**30 + 1 - 2**30 is 1 and
; 2**29 + 0.25 - 2**29 is 0.25, where fp32 additions in lane order give 0 and 0.
;   y = 1, 0.25, 2**30, -4.8125 (lanes 4..7, beyond the 4 x 4 MXM: 0)
.data [MEM_W0, MEM_W1], 0, bf16: 1, 1, 1, 0
.data [MEM_W0, MEM_W1], 1, bf16: 0.5, 0.25, 0.5, 0
.data [MEM_W0, MEM_W1], 2, bf16: 1, 0, 0, 0
.data [MEM_W0, MEM_W1], 3, bf16: 0, -2, 0, -1.125
.data [MEM_W0, MEM_W1], 4, bf16: 1073741824, 1, -1073741824, 2.5

.queue MEM_W0
    read w0, 0
    read w0, 1
    read w0, 2
    read w0, 3
.at 5
    read w0, 4
.at 19
    write 8, e4
.queue MEM_W1
.at 1
    read w1, 0
    read w1, 1
    read w1, 2
    read w1, 3
.at 6
    read w1, 4
.at 18
    write 8, e5
.queue MEM_W2
.at 17
    write 8, e6
.queue MEM_W3
.at 16
    write 8, e7
.queue MXM_W
.at 6
    lw.bf16 0, 0, w0, 4
.at 10
    iw 0
    abc.bf16 0, 0, w0, 0, 1
.at 13
    acc.f32 0, e4, 0, 1
