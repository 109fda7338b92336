; sync_notify.s: a barrier across queues (section 5a). Phase 2 starts when phase 1 is stored.
;
; Phase 1: MEM_W3 reads x onto e0 in cycle 0; the VXM (4 hops) takes relu(x) in cycle 5 and
; MEM_E1 (2 hops east) stores it in word 0 in cycle 8. MEM_E1 then notifies in cycle 9 and
; syncs itself in 10. Every other queue has parked on its own `sync` meanwhile (MEM_W3 and
; MEM_W2 in cycle 1, the VXM in 6): that one notify releases all four, and each issues the
; instruction after its sync in cycle 9 + NOTIFY_LATENCY = 11.
;
; Phase 2 (cycles from the release on, placed with `.at`, which the assembler computes
; through the sync): MEM_E1 reads word 0 back onto w0 in 12 (the VXM, 2 hops west, has it in
; 15). MEM_W2's `repeat 1, 1` right after its sync re-issues the instruction issued before it,
; `read e1, 0` (y), in cycle 11 (VXM: 11 + 1 + 3 = 15). The VXM adds them in 15, westward, and
; MEM_W3 (4 hops west) stores relu(x) + y in word 1 in cycle 20.
;
; Results: MEM_E1 word 0 = 1, 0, 3, 0, 5, 0, 7, 0; MEM_W3 word 1 = 11, 10, 13, 10, 15, 10, 17, 10.
; The last `end` is MEM_W3's in cycle 21: 21 + (2 - 1) + 1 = 23 cycles.

.data MEM_W3, 0, i8: 1, -2, 3, -4, 5, -6, 7, -8        ; x
.data MEM_W2, 0, i8: 10, 10, 10, 10, 10, 10, 10, 10    ; y

.queue MEM_W3
    read e0, 0              ; cycle 0
    sync                    ; parked from cycle 1, released by MEM_E1's notify of cycle 9
.at 20
    write 1, w1             ; cycle 20 = 15 + 1 + 4 hops

.queue MEM_W2
    read e1, 0              ; cycle 0 (nobody reads this copy)
    sync                    ; parked from cycle 1
    repeat 1, 1             ; cycle 11: re-issues `read e1, 0`

.queue VXM
.at 5
    relu.i8 e1, e0          ; cycle 5 = 0 + 1 + 4 hops
    sync                    ; parked from cycle 6
.at 15
    add.i8 w1, w0, e1       ; cycle 15

.queue MEM_E1
.at 8
    write 0, e1             ; cycle 8 = 5 + 1 + 2 hops; lands at the end of cycle 9
    notify                  ; cycle 9: every parked queue resumes in cycle 11
    sync                    ; cycle 10: released by its own notify (10 <= 9 + 2 - 1)
.at 12
    read w0, 0              ; cycle 12: relu(x), stored in phase 1
