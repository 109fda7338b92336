; overwrite.s: a slice in between replaces a passing value; downstream slices see the new one.
;
; MEM_W3 (position 2) reads word 0 (A) onto e0 in cycle 0; A would reach position q in cycle
; 1 + (q - 2). MEM_W1 (position 4) takes A in cycle 3. MEM_W0 (position 5) sees A at its input in
; cycle 4 and stores it, but it has also read its word 0 (B) onto e0 in cycle 3: B enters
; MEM_W0's output register at the end of cycle 4, exactly when A would have, so A goes no
; further. MEM_E0 (position 7) therefore takes B in cycle 6, and MEM_E3 (position 10) in 9,
; where A would have arrived. The checker accepts this: the reads find a value, the nearest
; upstream one. Result: word 1 of MEM_W1 and MEM_W0 holds A, word 1 of MEM_E0 and MEM_E3 holds B.

.data MEM_W3, 0, i8: 1, 1, 1, 1, 1, 1, 1, 1
.data MEM_W0, 0, i8: 2, 2, 2, 2, 2, 2, 2, 2

.queue MEM_W3
    read e0, 0              ; cycle 0: A

.queue MEM_W1
.at 3
    write 1, e0             ; cycle 3: A, 2 hops

.queue MEM_W0
.at 3
    read e0, 0              ; cycle 3: B, on A's way
    write 1, e0             ; cycle 4: A at the input (a slice never reads its own output)

.queue MEM_E0
.at 6
    write 1, e0             ; cycle 6: B, 2 hops from MEM_W0

.queue MEM_E3
.at 9
    write 1, e0             ; cycle 9: B, 5 hops from MEM_W0
