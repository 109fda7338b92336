.config c2c
.topology full4
.equ X_WORD, 0
.chip 0
.data MEM_E3, X_WORD, i8: 1, 2, 3, 4, 5, -6, 7, -128
.data MEM_W3, X_WORD, i8: 1, 2, 3, 4, 5, -6, 7, -128
.queue C2C_W
.at 0
    mark 0
.at 10
    send 0, w0
.at 58
    recv e1, 0
.queue MEM_W3
.at 6
    read w0, X_WORD
.at 62
    write 10, e1
.queue MEM_E3
.at 6
    read e0, X_WORD
.at 9
    read e0, X_WORD
.at 61
    write 9, w1
.at 66
    write 11, w1
.queue C2C_E
.at 0
    mark 0
.at 1
    mark 1
.at 10
    send 0, e0
.at 13
    send 1, e0
.at 57
    recv w1, 0
.at 62
    recv w1, 1
.chip 1
.queue C2C_W
    sync
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
    add.i8 e2, w1, w1
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
    deskew 0
.at 21
    recv w1, 0
.at 37
    send 0, e2
.chip 2
.queue C2C_W
    sync
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
    add.i8 e2, w1, w1
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
    deskew 0
.at 21
    recv w1, 0
.at 37
    send 0, e2
.chip 3
.queue C2C_W
    sync
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
.at 32
    add.i8 e2, w1, w1
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
    deskew 0
.at 24
    recv w1, 0
.at 40
    send 0, e2
