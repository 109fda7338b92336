; mem_gather.s: gather and scatter with per-lane addresses from an int16 address stream.
;
; The address vector A (int16, lane l) is spread over MEM_W1 (low bytes) and MEM_W2 (high
; bytes), word 0. MEM_W2 (4 hops west of MEM_E0) reads its byte onto e1 in cycle 0 and MEM_W1
; (3 hops) its byte onto e0 in cycle 1: the pair e0, e1 reaches MEM_E0 in cycle 5 and MEM_E1 in
; cycle 6. Addresses are taken modulo mem_words (64): 259 is word 3, 69 is word 5.
;
; MEM_E0, cycle 5: gather w0, e0: lane l gets byte l of MEM_E0's word A[l] (word a holds
;   a + l in lane l, so lane l gets (A[l] mod 64) + l); 2 hops west, MEM_W0 stores the result
;   in its word 30 in cycle 8.
; MEM_E1, cycle 6: scatter e0, e2: lane l writes byte l of word A[l] of MEM_E1 with e2[l], the
;   values -1..-8 that MEM_W0 reads from its word 4 in cycle 2 (3 hops). Lanes 0 and 2 both
;   name word 3: each writes its own byte of it.
.config default

.data [MEM_W1, MEM_W2], 0, i16: 3, 12, 259, 7, 40, 63, 0, 69
.data MEM_W0, 4, i8: -1, -2, -3, -4, -5, -6, -7, -8
.data MEM_E0, 0, i8: 0, 1, 2, 3, 4, 5, 6, 7
.data MEM_E0, 3, i8: 3, 4, 5, 6, 7, 8, 9, 10
.data MEM_E0, 5, i8: 5, 6, 7, 8, 9, 10, 11, 12
.data MEM_E0, 7, i8: 7, 8, 9, 10, 11, 12, 13, 14
.data MEM_E0, 12, i8: 12, 13, 14, 15, 16, 17, 18, 19
.data MEM_E0, 40, i8: 40, 41, 42, 43, 44, 45, 46, 47
.data MEM_E0, 63, i8: 63, 64, 65, 66, 67, 68, 69, 70
.data MEM_E1, 3, i8: 9, 9, 9, 9, 9, 9, 9, 9

.queue MEM_W2
    read e1, 0              ; cycle 0: high bytes of A

.queue MEM_W1
.at 1
    read e0, 0              ; cycle 1: low bytes of A

.queue MEM_W0
.at 2
    read e2, 4              ; cycle 2: the scatter's data
.at 8
    write 30, w0            ; cycle 8: the gather's result

.queue MEM_E0
.at 5
    gather w0, e0           ; w0[l] = MEM_E0[A[l] mod 64][l]

.queue MEM_E1
.at 6
    scatter e0, e2          ; MEM_E1[A[l] mod 64][l] = e2[l]
