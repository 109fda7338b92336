; sxm_permute.s: a permutation across superlanes and back again on SXM_W.
;
; perm_load s loads the permute table P from the int16 pair s, s+1 (entry i = lane i of s plus
; 256 x lane i of s+1: 16-bit lane indices, so that every configuration can name every lane);
; permute d, a then gives d[i] = a[P[i]]. The table must be a permutation of 0..lanes-1: here
; it is .data (low bytes in MEM_W0, high bytes zero in MEM_W1), so the checker verifies it.
;
;   x = 10 11 12 13 | 14 15 16 17      (MEM_W0 word 0)
;   P = 3 7 0 5 | 1 6 2 4              y = x[P] = 13 17 10 15 | 11 16 12 14   (MEM_E0 word 8)
;   Q = 2 4 6 0 | 7 3 5 1 = P^-1       z = y[Q] = x                           (MEM_E0 word 9)
;
; y goes to MEM_W3 (1 hop east of SXM_W), is read back and permuted with the inverse table.
; Latency 2 (superlanes): permute issued in t is readable 1 hop away in t + 3, 6 hops away
; (MEM_E0) in t + 8. A permute sees the table of every perm_load issued before it.
; cycles: 25

.data MEM_W0, 0, u8: 10, 11, 12, 13, 14, 15, 16, 17
.data MEM_W0, 1, u8: 3, 7, 0, 5, 1, 6, 2, 4
.data MEM_W0, 2, u8: 2, 4, 6, 0, 7, 3, 5, 1

.equ L1, 6                  ; perm_load P
.equ P1, 7                  ; permute x
.equ L2, 12                 ; perm_load Q
.equ P2, 14                 ; permute y

.queue MEM_W0               ; 4 hops east of SXM_W
.at L1 - 5
    read w0, 1              ; P, low bytes
    read w2, 0              ; x, readable at SXM_W in cycle P1
.at L2 - 5
    read w0, 2              ; Q, low bytes
.queue MEM_W1               ; 3 hops: the high bytes (word 1 is zero)
.at L1 - 4
    read w1, 1
.at L2 - 4
    read w1, 1

.queue SXM_W
.at L1
    perm_load w0
    permute e0, w2
.at L2
    perm_load w0
.at P2
    permute e0, w2

.queue MEM_W3               ; y round trip
.at P1 + 3
    write 4, e0
.at P2 - 2
    read w2, 4

.queue MEM_E0
.at P1 + 8
    write 8, e0
.at P2 + 8
    write 9, e0
