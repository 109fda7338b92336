; repeat_stream.s: `repeat` with a spacing, after a `nop`, on a MEM read and on a VXM op.
;
; `repeat n, d` occupies n*d slots and re-issues the last issued instruction (never a nop) in
; slots d-1, 2d-1, ... of them. MEM_W3 reads word 0 (x) onto e0 in cycle 0, waits 4 cycles,
; then `repeat 3, 2` in slots 5..10 re-issues the read in cycles 6, 8 and 10. MEM_W0 reads
; words 0..3 (y0..y3) onto e1 in cycles 3, 9, 11, 13. The VXM (5 hops + 1 after MEM_W3, 1 + 1
; after MEM_W0) adds them in cycle 5, then `repeat 3, 2` in slots 10..15 re-issues the add in
; 11, 13 and 15. MEM_E2 (3 hops east of the VXM) stores the sums x + yk in words 0..3 in cycles
; 9, 15, 17 and 19.
;
; x = 1..8, y0 = 10.., y1 = 20.., y2 = 30.., y3 = 120 (x + y3 wraps past 127 in lanes 7, 8).

.data MEM_W3, 0, i8: 1, 2, 3, 4, 5, 6, 7, 8
.data MEM_W0, 0, i8: 10, 10, 10, 10, 10, 10, 10, 10
.data MEM_W0, 1, i8: 20, 20, 20, 20, 20, 20, 20, 20
.data MEM_W0, 2, i8: 30, 30, 30, 30, 30, 30, 30, 30
.data MEM_W0, 3, i8: 120, 120, 120, 120, 120, 120, 120, 120

.queue MEM_W3
    read e0, 0              ; cycle 0
    nop 4                   ; slots 1..4
    repeat 3, 2             ; slots 5..10, copies in cycles 6, 8, 10
    end

.queue MEM_W0
.at 3
    read e1, 0              ; cycle 3: y0 for the add in cycle 5
.at 9
    read e1, 1              ; cycle 9: y1 for the copy in 11
.at 11
    read e1, 2              ; y2 for 13
.at 13
    read e1, 3              ; y3 for 15

.queue VXM
.at 5
    add.i8 e2, e0, e1       ; cycle 5
.at 10
    repeat 3, 2             ; slots 10..15, copies in cycles 11, 13, 15

.queue MEM_E2
.at 9
    write 0, e2             ; cycle 9 = 5 + 1 + 3 hops
.at 15
    write 1, e2
.at 17
    write 2, e2
.at 19
    write 3, e2
