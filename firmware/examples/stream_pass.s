; stream_pass.s: one value crosses the chip eastward and another westward, and the slices on
; the way copy them as they pass.
;
; Floorplan of `default` (positions): MEM_W3 2, MEM_W2 3, MEM_W1 4, MEM_W0 5, VXM 6,
; MEM_E0 7, MEM_E1 8, MEM_E2 9, MEM_E3 10. A `read` issued in cycle t is in the reading
; slice's output register at the end of cycle t + 1 (latency 1) and then moves one position per
; cycle, so a slice h hops downstream takes it with `write` in cycle t + 1 + h.
;
; * MEM_W3 reads word 0 onto e0 in cycle 0: MEM_W2 (1 hop) takes it in cycle 2, MEM_W0 (3 hops)
;   in 4, MEM_E0 (5 hops) in 6 and MEM_E3 (8 hops, the far edge) in 9.
; * MEM_E3 reads word 0 onto w1 in cycle 0: MEM_E0 (3 hops) takes it in 4, MEM_W0 (5 hops) in 6
;   and MEM_W3 (8 hops) in 9.
; Afterwards word 1 holds the eastward value and word 2 the westward one wherever it was taken.
; The hop counts depend only on the slices' distances, so the program runs unchanged on `medium`.

.data MEM_W3, 0, i8: 1, 2, 3, 4, 5, 6, 7, -8
.data MEM_E3, 0, i8: -1, -2, -3, -4, -5, -6, -7, 8

.queue MEM_W3
    read e0, 0              ; cycle 0: eastward value leaves the west edge
.at 9
    write 2, w1             ; cycle 9: MEM_E3's value, 8 hops later

.queue MEM_W2
.at 2
    write 1, e0             ; 1 hop from MEM_W3

.queue MEM_W0
.at 4
    write 1, e0             ; 3 hops from MEM_W3
.at 6
    write 2, w1             ; 5 hops from MEM_E3

.queue MEM_E0
.at 4
    write 2, w1             ; 3 hops from MEM_E3
.at 6
    write 1, e0             ; 5 hops from MEM_W3

.queue MEM_E3
    read w1, 0              ; cycle 0: westward value leaves the east edge
.at 9
    write 1, e0             ; 8 hops from MEM_W3
    end
