.config c2c
.topology ring2
.equ X_WORD, 0
.chip 0
.data MEM_E3, X_WORD, i8: 1, 2, 3, 4, 5, -6, 7, -128
.queue C2C_W
.at 56
    recv e1, 0
.queue MEM_W3
.at 60
    write 7, e1
.queue MEM_E3
.at 6
    read e0, X_WORD
.queue C2C_E
.at 0
    mark 0
.at 10
    send 0, e0
.chip 1
.queue C2C_W
    deskew 0
.at 21
    recv e1, 0
.queue MXM_W
    sync
.queue SXM_W
    sync
.queue MEM_W3
    sync
.queue MEM_W2
    sync
.queue MEM_W1
    sync
.queue MEM_W0
    sync
.queue VXM
    sync
.at 29
    add.i8 e2, e1, e1
.queue MEM_E0
    sync
.queue MEM_E1
    sync
.queue MEM_E2
    sync
.queue MEM_E3
    sync
.queue SXM_E
    sync
.queue MXM_E
    sync
.queue C2C_E
    sync
.at 37
    send 0, e2
