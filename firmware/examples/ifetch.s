; ifetch.s: a VXM program longer than its queue, streamed from memory (section 5b).
;
; The VXM's queue holds queue_depth = 128 words; this program runs 129 words through it (124
; adds, each chaining the result of two cycles before: r = r + 1, so the adds of even and of
; odd cycles are two running counts side by side), so the ring buffer wraps. Only two words
; are preloaded (`nop 8`, `ifetch e0, 63`); everything else comes from the block A, placed by
; `.fetched` as int32 lane 0 words 0..62 of MEM_W0..MEM_W3 (byte i in MEM_Wi), plus an `end` in
; word 63:
;
;   A = ifetch e0, 63 ; add.i8 e4, r, w0 (62 times)
;
; MEM_Wi (i + 1 hops west of the VXM) starts a 63-word read sequence onto e(i) in cycle
; F - 2 - i, so that the four bytes of word k reach the VXM together in cycle F + k, the cycles
; of an `ifetch e0, 63` issued in F. The queue executes:
;
;   cycles   0..7    nop 8                         (word 0)
;   cycles   8..70   ifetch e0, 63: fetches A      (word 1; words 2..64)
;   cycles  71..133  A's ifetch: fetches A again   (word 2; words 65..127)
;   cycles 134..195  A's 62 adds                   (words 3..64; each count 31)
;   cycles 196..258  A's ifetch: fetches end, A[0..61] from words 63, 0..61 (the sequence
;                    wraps at mem_words): words 128..190, into queue indices 0..62, whose
;                    words 0..62 are done (the fill pointer stays within 128 of the pc)
;   cycles 259..320  A's 62 adds                   (words 66..127; 259 and 260 both
;                                                   read 195's 31, then each count goes on
;                                                   to 62)
;   cycle  321       end                           (word 128, at queue index 0)
;
; Every word executes at least FETCH_LATENCY = 2 cycles after its fetch (word 2, fetched in 8,
; runs in 71). The words fetched after `end` are never executed, but the checker still decodes
; them (rule 11). MEM_E0 puts int8 ones on w0 (1 hop: a read in u is at the VXM in u + 2) for
; every add; MEM_E1 (2 hops east) stores the last add's result, issued in 320, in cycle 323.
;
; Result: MEM_E1 word 0 = 62 in every lane. The last `end` is MEM_E1's in cycle 324:
; 324 + (2 - 1) + 1 = 326 cycles.

.equ F1, 8                  ; the three fetches of the VXM
.equ F2, 71
.equ F3, 196
.equ N, 63                  ; words per fetch
.equ LAST, 320              ; the last add

.data MEM_E0, 0, i8: 1, 1, 1, 1, 1, 1, 1, 1

.queue VXM
.at F1
    ifetch e0, N
.fetched [MEM_W0, MEM_W1, MEM_W2, MEM_W3], 0
    ifetch e0, N            ; A[0]
    add.i8 e4, r, w0        ; A[1]
    add.i8 e4, r, w0
    add.i8 e4, r, w0
    add.i8 e4, r, w0
    add.i8 e4, r, w0
    add.i8 e4, r, w0
    add.i8 e4, r, w0
    add.i8 e4, r, w0
    add.i8 e4, r, w0
    add.i8 e4, r, w0
    add.i8 e4, r, w0        ; A[11]
    add.i8 e4, r, w0
    add.i8 e4, r, w0
    add.i8 e4, r, w0
    add.i8 e4, r, w0
    add.i8 e4, r, w0
    add.i8 e4, r, w0
    add.i8 e4, r, w0
    add.i8 e4, r, w0
    add.i8 e4, r, w0
    add.i8 e4, r, w0        ; A[21]
    add.i8 e4, r, w0
    add.i8 e4, r, w0
    add.i8 e4, r, w0
    add.i8 e4, r, w0
    add.i8 e4, r, w0
    add.i8 e4, r, w0
    add.i8 e4, r, w0
    add.i8 e4, r, w0
    add.i8 e4, r, w0
    add.i8 e4, r, w0        ; A[31]
    add.i8 e4, r, w0
    add.i8 e4, r, w0
    add.i8 e4, r, w0
    add.i8 e4, r, w0
    add.i8 e4, r, w0
    add.i8 e4, r, w0
    add.i8 e4, r, w0
    add.i8 e4, r, w0
    add.i8 e4, r, w0
    add.i8 e4, r, w0        ; A[41]
    add.i8 e4, r, w0
    add.i8 e4, r, w0
    add.i8 e4, r, w0
    add.i8 e4, r, w0
    add.i8 e4, r, w0
    add.i8 e4, r, w0
    add.i8 e4, r, w0
    add.i8 e4, r, w0
    add.i8 e4, r, w0
    add.i8 e4, r, w0        ; A[51]
    add.i8 e4, r, w0
    add.i8 e4, r, w0
    add.i8 e4, r, w0
    add.i8 e4, r, w0
    add.i8 e4, r, w0
    add.i8 e4, r, w0
    add.i8 e4, r, w0
    add.i8 e4, r, w0
    add.i8 e4, r, w0
    add.i8 e4, r, w0        ; A[61]
    add.i8 e4, r, w0
.fetched [MEM_W0, MEM_W1, MEM_W2, MEM_W3], 63
    end

.queue MEM_W0
    agi 0, 1, N             ; read sequences of N words, stride 1
.at F1 - 2 - 0
    sread e0, 0
.at F2 - 2 - 0
    sread e0, 0
.at F3 - 2 - 0
    sread e0, 63           ; 63, 0, 1, .., 61
.at F3 - 2 - 0 + N          ; the queue's end must come after the last element

.queue MEM_W1
    agi 0, 1, N             ; read sequences of N words, stride 1
.at F1 - 2 - 1
    sread e1, 0
.at F2 - 2 - 1
    sread e1, 0
.at F3 - 2 - 1
    sread e1, 63           ; 63, 0, 1, .., 61
.at F3 - 2 - 1 + N          ; the queue's end must come after the last element

.queue MEM_W2
    agi 0, 1, N             ; read sequences of N words, stride 1
.at F1 - 2 - 2
    sread e2, 0
.at F2 - 2 - 2
    sread e2, 0
.at F3 - 2 - 2
    sread e2, 63           ; 63, 0, 1, .., 61
.at F3 - 2 - 2 + N          ; the queue's end must come after the last element

.queue MEM_W3
    agi 0, 1, N             ; read sequences of N words, stride 1
.at F1 - 2 - 3
    sread e3, 0
.at F2 - 2 - 3
    sread e3, 0
.at F3 - 2 - 3
    sread e3, 63           ; 63, 0, 1, .., 61
.at F3 - 2 - 3 + N          ; the queue's end must come after the last element

.queue MEM_E0
.at F2 + N - 2
    read w0, 0              ; at the VXM in F2 + N = 134, the first add
    repeat LAST - (F2 + N), 1

.queue MEM_E1
.at LAST + 3
    write 0, e4             ; r after 124 adds
