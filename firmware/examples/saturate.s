; saturate.s: int16 operands, saturating narrowing and sign-extending widening.
;
; v is an int16 vector spread over MEM_W1 (low byte) and MEM_W0 (high byte), word 0. MEM_W1 (2
; hops + 1 from the VXM) reads the low byte onto e0 in cycles 2..4, MEM_W0 the high byte onto e1
; in cycles 3..5, so the pair e0, e1 reaches the VXM in cycles 5, 6, 7:
;   cycle 5  cvt.i16.i8 e2, e0   saturating -> MEM_E0 (1 hop) stores it in word 0 in cycle 7
;   cycle 6  cvt.i16.i32 e4, e0  sign-extending -> e4..e7, stored byte by byte by MEM_E0..MEM_E3
;                                in cycles 8, 9, 10, 11 (word 1, spread: byte i in MEM_Ei)
;   cycle 7  relu.i16 e2, e0     -> e2, e3, stored by MEM_E1 (2 hops) in cycle 10 (byte 0, word 0)
;                                and MEM_E2 (3 hops) in cycle 11 (byte 1, word 0)
;
; v = 300, -300, 32767, -32768, 127, -128, 1000, -1
;   int8 : 127, -128, 127, -128, 127, -128, 127, -1
;   int32: 300, -300, 32767, -32768, 127, -128, 1000, -1
;   relu : 300, 0, 32767, 0, 127, 0, 1000, 0

.data [MEM_W1, MEM_W0], 0, i16: 300, -300, 32767, -32768, 127, -128, 1000, -1

.queue MEM_W1
.at 2
    read e0, 0              ; cycle 2
    repeat 2, 1             ; cycles 3, 4

.queue MEM_W0
.at 3
    read e1, 0              ; cycle 3
    repeat 2, 1             ; cycles 4, 5

.queue VXM
.at 5
    cvt.i16.i8 e2, e0
    cvt.i16.i32 e4, e0
    relu.i16 e2, e0

.queue MEM_E0
.at 7
    write 0, e2             ; cycle 7: int8
    write 1, e4             ; cycle 8: int32 byte 0

.queue MEM_E1
.at 9
    write 1, e5             ; cycle 9: int32 byte 1
    write 0, e2             ; cycle 10: relu low byte

.queue MEM_E2
.at 10
    write 1, e6             ; cycle 10: int32 byte 2
    write 0, e3             ; cycle 11: relu high byte

.queue MEM_E3
.at 11
    write 1, e7             ; cycle 11: int32 byte 3
