; bank_pingpong.s: MEM_W0 and MEM_E0 swap their even words into each other's odd words, and
; MEM_E0 reads one bank in the same cycles in which its writes commit to the other bank.
;
; Word a lives in bank a % 2. MEM_W0 (position 5) reads words 0, 2, 4, 6 onto e0 in cycles 0, 2,
; 4, 6; MEM_E0 (position 7, 2 hops east) takes them in cycles 3, 5, 7, 9 and writes them to its
; words 1, 3, 5, 7 (bank 1); each write commits at the end of the next cycle (4, 6, 8, 10). In
; exactly those cycles MEM_E0 reads its own words 0, 2, 4, 6 (bank 0) onto w0: one read and one
; commit per cycle on different banks is allowed (rule 3 forbids only the same bank). MEM_W0
; takes them 2 hops later, in cycles 7, 9, 11, 13, and stores them in its words 1, 3, 5, 7.
.config default

.data MEM_W0, 0, i8: 10, 11, 12, 13, 14, 15, 16, 17
.data MEM_W0, 2, i8: 20, 21, 22, 23, 24, 25, 26, 27
.data MEM_W0, 4, i8: 30, 31, 32, 33, 34, 35, 36, 37
.data MEM_W0, 6, i8: 40, 41, 42, 43, 44, 45, 46, 47
.data MEM_E0, 0, i8: -10, -11, -12, -13, -14, -15, -16, -17
.data MEM_E0, 2, i8: -20, -21, -22, -23, -24, -25, -26, -27
.data MEM_E0, 4, i8: -30, -31, -32, -33, -34, -35, -36, -37
.data MEM_E0, 6, i8: -40, -41, -42, -43, -44, -45, -46, -47

.queue MEM_W0
    read e0, 0              ; cycle 0
    nop 1
    read e0, 2              ; cycle 2
    nop 1
    read e0, 4              ; cycle 4
    nop 1
    read e0, 6              ; cycle 6
    write 1, w0             ; cycle 7: MEM_E0's word 0, read in cycle 4
    nop 1
    write 3, w0             ; cycle 9
    nop 1
    write 5, w0             ; cycle 11
    nop 1
    write 7, w0             ; cycle 13

.queue MEM_E0
.at 3
    write 1, e0             ; cycle 3, commits at the end of cycle 4
    read w0, 0              ; cycle 4: bank 0 while bank 1 commits
    write 3, e0             ; cycle 5
    read w0, 2              ; cycle 6
    write 5, e0             ; cycle 7
    read w0, 4              ; cycle 8
    write 7, e0             ; cycle 9
    read w0, 6              ; cycle 10
