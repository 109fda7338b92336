// Simulation models of the ECP5 primitives that Yosys's cells_sim.v leaves as blackboxes and
// the OpenTSP board netlist instantiates (opentsp.verif.netlist_sim, docs/fpga.md, "Checking
// the netlist without a board"): DP16KD (block RAM), MULT18X18D (DSP multiplier), EHXPLLL
// (PLL), SGSR (global set/reset). Yosys's own models (common_sim.vh, ccu2c_sim.vh) give the
// LUTs, carries, flip-flops, LUT RAM and I/O cells.
//
// Written from Lattice FPGA-TN-02204 (ECP5 memory usage guide), FPGA-TN-02205 (sysDSP) and
// FPGA-TN-02200 (sysCLOCK), restricted to the modes Yosys 0.66's synth_ecp5 maps to
// (share/lattice/brams_map_16kd.v, dsp_map_18x18.v); a mode outside them stops the simulation
// at time 0 with a message rather than simulating something unchecked.
//
// EHXPLLL: CLKOP is CLKI (the simulation runs in clock cycles; the dividers only set the
// frequency), LOCK rises after 16 CLKI cycles. SGSR: the flip-flops start at their initial
// values (cells_sim's TRELLIS_FF), as the global set/reset leaves them; the release is not
// modelled.


module DP16KD(
  input DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0,
  input ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0,
  input CEA, OCEA, CLKA, WEA, RSTA,
  input CSA2, CSA1, CSA0,
  output DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5, DOA4, DOA3, DOA2, DOA1, DOA0,
  input DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6, DIB5, DIB4, DIB3, DIB2, DIB1, DIB0,
  input ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0,
  input CEB, OCEB, CLKB, WEB, RSTB,
  input CSB2, CSB1, CSB0,
  output DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0
);
  parameter DATA_WIDTH_A = 18;
  parameter DATA_WIDTH_B = 18;
  parameter REGMODE_A = "NOREG";
  parameter REGMODE_B = "NOREG";
  parameter RESETMODE = "SYNC";
  parameter ASYNC_RESET_RELEASE = "SYNC";
  parameter CSDECODE_A = "0b000";
  parameter CSDECODE_B = "0b000";
  parameter WRITEMODE_A = "NORMAL";
  parameter WRITEMODE_B = "NORMAL";
  parameter CLKAMUX = "CLKA";
  parameter CLKBMUX = "CLKB";
  parameter GSR = "ENABLED";
  parameter WID = 0;
  parameter INIT_DATA = "STATIC";
  parameter [319:0] INITVAL_00 = 320'h0;
  parameter [319:0] INITVAL_01 = 320'h0;
  parameter [319:0] INITVAL_02 = 320'h0;
  parameter [319:0] INITVAL_03 = 320'h0;
  parameter [319:0] INITVAL_04 = 320'h0;
  parameter [319:0] INITVAL_05 = 320'h0;
  parameter [319:0] INITVAL_06 = 320'h0;
  parameter [319:0] INITVAL_07 = 320'h0;
  parameter [319:0] INITVAL_08 = 320'h0;
  parameter [319:0] INITVAL_09 = 320'h0;
  parameter [319:0] INITVAL_0A = 320'h0;
  parameter [319:0] INITVAL_0B = 320'h0;
  parameter [319:0] INITVAL_0C = 320'h0;
  parameter [319:0] INITVAL_0D = 320'h0;
  parameter [319:0] INITVAL_0E = 320'h0;
  parameter [319:0] INITVAL_0F = 320'h0;
  parameter [319:0] INITVAL_10 = 320'h0;
  parameter [319:0] INITVAL_11 = 320'h0;
  parameter [319:0] INITVAL_12 = 320'h0;
  parameter [319:0] INITVAL_13 = 320'h0;
  parameter [319:0] INITVAL_14 = 320'h0;
  parameter [319:0] INITVAL_15 = 320'h0;
  parameter [319:0] INITVAL_16 = 320'h0;
  parameter [319:0] INITVAL_17 = 320'h0;
  parameter [319:0] INITVAL_18 = 320'h0;
  parameter [319:0] INITVAL_19 = 320'h0;
  parameter [319:0] INITVAL_1A = 320'h0;
  parameter [319:0] INITVAL_1B = 320'h0;
  parameter [319:0] INITVAL_1C = 320'h0;
  parameter [319:0] INITVAL_1D = 320'h0;
  parameter [319:0] INITVAL_1E = 320'h0;
  parameter [319:0] INITVAL_1F = 320'h0;
  parameter [319:0] INITVAL_20 = 320'h0;
  parameter [319:0] INITVAL_21 = 320'h0;
  parameter [319:0] INITVAL_22 = 320'h0;
  parameter [319:0] INITVAL_23 = 320'h0;
  parameter [319:0] INITVAL_24 = 320'h0;
  parameter [319:0] INITVAL_25 = 320'h0;
  parameter [319:0] INITVAL_26 = 320'h0;
  parameter [319:0] INITVAL_27 = 320'h0;
  parameter [319:0] INITVAL_28 = 320'h0;
  parameter [319:0] INITVAL_29 = 320'h0;
  parameter [319:0] INITVAL_2A = 320'h0;
  parameter [319:0] INITVAL_2B = 320'h0;
  parameter [319:0] INITVAL_2C = 320'h0;
  parameter [319:0] INITVAL_2D = 320'h0;
  parameter [319:0] INITVAL_2E = 320'h0;
  parameter [319:0] INITVAL_2F = 320'h0;
  parameter [319:0] INITVAL_30 = 320'h0;
  parameter [319:0] INITVAL_31 = 320'h0;
  parameter [319:0] INITVAL_32 = 320'h0;
  parameter [319:0] INITVAL_33 = 320'h0;
  parameter [319:0] INITVAL_34 = 320'h0;
  parameter [319:0] INITVAL_35 = 320'h0;
  parameter [319:0] INITVAL_36 = 320'h0;
  parameter [319:0] INITVAL_37 = 320'h0;
  parameter [319:0] INITVAL_38 = 320'h0;
  parameter [319:0] INITVAL_39 = 320'h0;
  parameter [319:0] INITVAL_3A = 320'h0;
  parameter [319:0] INITVAL_3B = 320'h0;
  parameter [319:0] INITVAL_3C = 320'h0;
  parameter [319:0] INITVAL_3D = 320'h0;
  parameter [319:0] INITVAL_3E = 320'h0;
  parameter [319:0] INITVAL_3F = 320'h0;

  wire [17:0] dia = {DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0};
  wire [17:0] dib = {DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6, DIB5, DIB4, DIB3, DIB2, DIB1, DIB0};
  wire [13:0] ada = {ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0};
  wire [13:0] adb = {ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0};
  wire clka = (CLKAMUX == "INV") ? ~CLKA : CLKA;
  wire clkb = (CLKBMUX == "INV") ? ~CLKB : CLKB;

  function [2:0] cs_value(input [39:0] text);     // "0b101" -> 3'b101
    cs_value = {text[16], text[8], text[0]};
  endfunction
  wire csa = {CSA2, CSA1, CSA0} == cs_value(CSDECODE_A);
  wire csb = {CSB2, CSB1, CSB0} == cs_value(CSDECODE_B);

  reg [17:0] mem [0:1023];       // 1024 rows of 18 bits (two 9-bit bytes)
  integer row;
  function [319:0] initval(input integer index);
    case (index)
      0: initval = INITVAL_00;
      1: initval = INITVAL_01;
      2: initval = INITVAL_02;
      3: initval = INITVAL_03;
      4: initval = INITVAL_04;
      5: initval = INITVAL_05;
      6: initval = INITVAL_06;
      7: initval = INITVAL_07;
      8: initval = INITVAL_08;
      9: initval = INITVAL_09;
      10: initval = INITVAL_0A;
      11: initval = INITVAL_0B;
      12: initval = INITVAL_0C;
      13: initval = INITVAL_0D;
      14: initval = INITVAL_0E;
      15: initval = INITVAL_0F;
      16: initval = INITVAL_10;
      17: initval = INITVAL_11;
      18: initval = INITVAL_12;
      19: initval = INITVAL_13;
      20: initval = INITVAL_14;
      21: initval = INITVAL_15;
      22: initval = INITVAL_16;
      23: initval = INITVAL_17;
      24: initval = INITVAL_18;
      25: initval = INITVAL_19;
      26: initval = INITVAL_1A;
      27: initval = INITVAL_1B;
      28: initval = INITVAL_1C;
      29: initval = INITVAL_1D;
      30: initval = INITVAL_1E;
      31: initval = INITVAL_1F;
      32: initval = INITVAL_20;
      33: initval = INITVAL_21;
      34: initval = INITVAL_22;
      35: initval = INITVAL_23;
      36: initval = INITVAL_24;
      37: initval = INITVAL_25;
      38: initval = INITVAL_26;
      39: initval = INITVAL_27;
      40: initval = INITVAL_28;
      41: initval = INITVAL_29;
      42: initval = INITVAL_2A;
      43: initval = INITVAL_2B;
      44: initval = INITVAL_2C;
      45: initval = INITVAL_2D;
      46: initval = INITVAL_2E;
      47: initval = INITVAL_2F;
      48: initval = INITVAL_30;
      49: initval = INITVAL_31;
      50: initval = INITVAL_32;
      51: initval = INITVAL_33;
      52: initval = INITVAL_34;
      53: initval = INITVAL_35;
      54: initval = INITVAL_36;
      55: initval = INITVAL_37;
      56: initval = INITVAL_38;
      57: initval = INITVAL_39;
      58: initval = INITVAL_3A;
      59: initval = INITVAL_3B;
      60: initval = INITVAL_3C;
      61: initval = INITVAL_3D;
      62: initval = INITVAL_3E;
      63: initval = INITVAL_3F;
      default: initval = 320'h0;
    endcase
  endfunction
  initial begin
    if (!(DATA_WIDTH_A == 9 || DATA_WIDTH_A == 18 || DATA_WIDTH_A == 36)
        || !(DATA_WIDTH_B == 9 || DATA_WIDTH_B == 18 || DATA_WIDTH_B == 36)) begin
      $display("DP16KD %m: DATA_WIDTH_A %0d, DATA_WIDTH_B %0d: only 9, 18 and 36 are modelled",
               DATA_WIDTH_A, DATA_WIDTH_B);
      $finish;
    end
    for (row = 0; row < 1024; row = row + 1)
      mem[row] = initval(row / 16) >> ((row % 16) * 20);
  end

  // A read of `width` bits at port address `ad` (36 bits: two rows, the even one low).
  function [35:0] read_word(input integer width, input [13:0] ad);
    if (width == 36)
      read_word = {mem[{ad[13:5], 1'b1}], mem[{ad[13:5], 1'b0}]};
    else if (width == 18)
      read_word = {18'b0, mem[ad[13:4]]};
    else
      read_word = {27'b0, ad[3] ? mem[ad[13:4]][17:9] : mem[ad[13:4]][8:0]};
  endfunction

  // The word read back after writing `data` at `ad` (write-through).
  function [35:0] merged(input integer width, input [13:0] ad, input [35:0] data);
    reg [35:0] old;
    begin
      old = read_word(width, ad);
      if (width == 36)
        merged = {ad[3] ? data[35:27] : old[35:27], ad[2] ? data[26:18] : old[26:18],
                  ad[1] ? data[17:9] : old[17:9], ad[0] ? data[8:0] : old[8:0]};
      else if (width == 18)
        merged = {18'b0, ad[1] ? data[17:9] : old[17:9], ad[0] ? data[8:0] : old[8:0]};
      else
        merged = {27'b0, data[8:0]};
    end
  endfunction

  reg [35:0] rda = 36'b0, rdb = 36'b0;       // the read latches
  reg [35:0] outa = 36'b0, outb = 36'b0;     // the output registers (REGMODE "OUTREG")

  task automatic write_word(input integer width, input [13:0] ad, input [35:0] data);
    if (width == 36) begin
      if (ad[0]) mem[{ad[13:5], 1'b0}][8:0] <= data[8:0];
      if (ad[1]) mem[{ad[13:5], 1'b0}][17:9] <= data[17:9];
      if (ad[2]) mem[{ad[13:5], 1'b1}][8:0] <= data[26:18];
      if (ad[3]) mem[{ad[13:5], 1'b1}][17:9] <= data[35:27];
    end else if (width == 18) begin
      if (ad[0]) mem[ad[13:4]][8:0] <= data[8:0];
      if (ad[1]) mem[ad[13:4]][17:9] <= data[17:9];
    end else if (ad[3])
      mem[ad[13:4]][17:9] <= data[8:0];
    else
      mem[ad[13:4]][8:0] <= data[8:0];
  endtask

  wire [35:0] wda = {dib, dia};     // 36 bits are written through port A's and B's inputs
  wire [35:0] wdb = {18'b0, dib};
  wire sync_reset = RESETMODE == "SYNC";

  always @(posedge clka) begin
    if (CEA && csa) begin
      if (WEA) begin
        write_word(DATA_WIDTH_A, ada, wda);
        if (WRITEMODE_A == "WRITETHROUGH")
          rda <= merged(DATA_WIDTH_A, ada, wda);
        else if (WRITEMODE_A == "READBEFOREWRITE")
          rda <= read_word(DATA_WIDTH_A, ada);
      end else
        rda <= read_word(DATA_WIDTH_A, ada);
    end
    if (sync_reset && RSTA)
      rda <= 36'b0;
    if (OCEA)
      outa <= (sync_reset && RSTA) ? 36'b0 : rda;
  end
  always @(posedge clkb) begin
    if (CEB && csb) begin
      if (WEB) begin
        write_word(DATA_WIDTH_B, adb, wdb);
        if (WRITEMODE_B == "WRITETHROUGH")
          rdb <= merged(DATA_WIDTH_B, adb, wdb);
        else if (WRITEMODE_B == "READBEFOREWRITE")
          rdb <= read_word(DATA_WIDTH_B, adb);
      end else
        rdb <= read_word(DATA_WIDTH_B, adb);
    end
    if (sync_reset && RSTB)
      rdb <= 36'b0;
    if (OCEB)
      outb <= (sync_reset && RSTB) ? 36'b0 : rdb;
  end
  always @(posedge RSTA) if (!sync_reset) begin rda <= 36'b0; outa <= 36'b0; end
  always @(posedge RSTB) if (!sync_reset) begin rdb <= 36'b0; outb <= 36'b0; end

  wire [35:0] porta = REGMODE_A == "OUTREG" ? outa : rda;
  wire [35:0] portb = REGMODE_B == "OUTREG" ? outb : rdb;
  // A 36-bit read port drives DOA (low half) and DOB (high half).
  assign {DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5, DOA4, DOA3, DOA2, DOA1, DOA0} = DATA_WIDTH_B == 36 ? portb[17:0] : porta[17:0];
  assign {DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0} = DATA_WIDTH_B == 36 ? portb[35:18] : DATA_WIDTH_A == 36 ? porta[35:18] : portb[17:0];
endmodule

module MULT18X18D(
  input A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0, B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0, C17, C16, C15, C14, C13, C12, C11, C10, C9, C8, C7, C6, C5, C4, C3, C2, C1, C0, SIGNEDA, SIGNEDB, SOURCEA, SOURCEB, CLK3, CLK2, CLK1, CLK0, CE3, CE2, CE1, CE0, RST3, RST2, RST1, RST0, SRIA17, SRIA16, SRIA15, SRIA14, SRIA13, SRIA12, SRIA11, SRIA10, SRIA9, SRIA8, SRIA7, SRIA6, SRIA5, SRIA4, SRIA3, SRIA2, SRIA1, SRIA0, SRIB17, SRIB16, SRIB15, SRIB14, SRIB13, SRIB12, SRIB11, SRIB10, SRIB9, SRIB8, SRIB7, SRIB6, SRIB5, SRIB4, SRIB3, SRIB2, SRIB1, SRIB0,
  output SROA17, SROA16, SROA15, SROA14, SROA13, SROA12, SROA11, SROA10, SROA9, SROA8, SROA7, SROA6, SROA5, SROA4, SROA3, SROA2, SROA1, SROA0, SROB17, SROB16, SROB15, SROB14, SROB13, SROB12, SROB11, SROB10, SROB9, SROB8, SROB7, SROB6, SROB5, SROB4, SROB3, SROB2, SROB1, SROB0, ROA17, ROA16, ROA15, ROA14, ROA13, ROA12, ROA11, ROA10, ROA9, ROA8, ROA7, ROA6, ROA5, ROA4, ROA3, ROA2, ROA1, ROA0, ROB17, ROB16, ROB15, ROB14, ROB13, ROB12, ROB11, ROB10, ROB9, ROB8, ROB7, ROB6, ROB5, ROB4, ROB3, ROB2, ROB1, ROB0, ROC17, ROC16, ROC15, ROC14, ROC13, ROC12, ROC11, ROC10, ROC9, ROC8, ROC7, ROC6, ROC5, ROC4, ROC3, ROC2, ROC1, ROC0, P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20, P19, P18, P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2, P1, P0, SIGNEDP
);
  parameter REG_INPUTA_CLK = "NONE";
  parameter REG_INPUTB_CLK = "NONE";
  parameter REG_INPUTC_CLK = "NONE";
  parameter REG_PIPELINE_CLK = "NONE";
  parameter REG_OUTPUT_CLK = "NONE";
  parameter REG_INPUTA_CE = "CE0";
  parameter REG_INPUTB_CE = "CE0";
  parameter REG_INPUTC_CE = "CE0";
  parameter REG_PIPELINE_CE = "CE0";
  parameter REG_OUTPUT_CE = "CE0";
  parameter REG_INPUTA_RST = "RST0";
  parameter REG_INPUTB_RST = "RST0";
  parameter REG_INPUTC_RST = "RST0";
  parameter REG_PIPELINE_RST = "RST0";
  parameter REG_OUTPUT_RST = "RST0";
  parameter CLK0_DIV = "ENABLED";
  parameter CLK1_DIV = "ENABLED";
  parameter CLK2_DIV = "ENABLED";
  parameter CLK3_DIV = "ENABLED";
  parameter HIGHSPEED_CLK = "NONE";
  parameter GSR = "ENABLED";
  parameter CAS_MATCH_REG = "FALSE";
  parameter SOURCEB_MODE = "B_SHIFT";
  parameter MULT_BYPASS = "DISABLED";
  parameter RESETMODE = "SYNC";
  initial
    if (REG_INPUTA_CLK != "NONE" || REG_INPUTB_CLK != "NONE" || REG_INPUTC_CLK != "NONE"
        || REG_PIPELINE_CLK != "NONE" || REG_OUTPUT_CLK != "NONE" || MULT_BYPASS != "DISABLED")
    begin
      $display("MULT18X18D %m: only the combinational multiplier (no registers) is modelled");
      $finish;
    end
  wire [17:0] a = {A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0};
  wire [17:0] b = {B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0};
  // SOURCEA/SOURCEB select the cascade inputs (SRIA, SRIB): not modelled, Yosys ties them to 0.
  wire [35:0] a_wide = {{18{SIGNEDA & a[17]}}, a};
  wire [35:0] b_wide = {{18{SIGNEDB & b[17]}}, b};
  wire [35:0] product = a_wide * b_wide;
  assign {P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20, P19, P18, P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2, P1, P0} = product;
  assign SIGNEDP = SIGNEDA | SIGNEDB;
  assign {SROA17, SROA16, SROA15, SROA14, SROA13, SROA12, SROA11, SROA10, SROA9, SROA8, SROA7, SROA6, SROA5, SROA4, SROA3, SROA2, SROA1, SROA0, SROB17, SROB16, SROB15, SROB14, SROB13, SROB12, SROB11, SROB10, SROB9, SROB8, SROB7, SROB6, SROB5, SROB4, SROB3, SROB2, SROB1, SROB0, ROA17, ROA16, ROA15, ROA14, ROA13, ROA12, ROA11, ROA10, ROA9, ROA8, ROA7, ROA6, ROA5, ROA4, ROA3, ROA2, ROA1, ROA0, ROB17, ROB16, ROB15, ROB14, ROB13, ROB12, ROB11, ROB10, ROB9, ROB8, ROB7, ROB6, ROB5, ROB4, ROB3, ROB2, ROB1, ROB0, ROC17, ROC16, ROC15, ROC14, ROC13, ROC12, ROC11, ROC10, ROC9, ROC8, ROC7, ROC6, ROC5, ROC4, ROC3, ROC2, ROC1, ROC0} = 0;
endmodule

module EHXPLLL(input CLKI, CLKFB, PHASESEL1, PHASESEL0, PHASEDIR, PHASESTEP, PHASELOADREG,
               STDBY, PLLWAKESYNC, RST, ENCLKOP, ENCLKOS, ENCLKOS2, ENCLKOS3,
               output CLKOP, CLKOS, CLKOS2, CLKOS3, LOCK, INTLOCK, REFCLK, CLKINTFB);
  parameter CLKI_DIV = 1;
  parameter CLKFB_DIV = 1;
  parameter CLKOP_DIV = 8;
  parameter CLKOS_DIV = 8;
  parameter CLKOS2_DIV = 8;
  parameter CLKOS3_DIV = 8;
  parameter CLKOP_ENABLE = "ENABLED";
  parameter CLKOS_ENABLE = "DISABLED";
  parameter CLKOS2_ENABLE = "DISABLED";
  parameter CLKOS3_ENABLE = "DISABLED";
  parameter CLKOP_CPHASE = 0;
  parameter CLKOS_CPHASE = 0;
  parameter CLKOS2_CPHASE = 0;
  parameter CLKOS3_CPHASE = 0;
  parameter CLKOP_FPHASE = 0;
  parameter CLKOS_FPHASE = 0;
  parameter CLKOS2_FPHASE = 0;
  parameter CLKOS3_FPHASE = 0;
  parameter FEEDBK_PATH = "CLKOP";
  parameter CLKOP_TRIM_POL = "RISING";
  parameter CLKOP_TRIM_DELAY = 0;
  parameter CLKOS_TRIM_POL = "RISING";
  parameter CLKOS_TRIM_DELAY = 0;
  parameter OUTDIVIDER_MUXA = "DIVA";
  parameter OUTDIVIDER_MUXB = "DIVB";
  parameter OUTDIVIDER_MUXC = "DIVC";
  parameter OUTDIVIDER_MUXD = "DIVD";
  parameter PLL_LOCK_MODE = 0;
  parameter PLL_LOCK_DELAY = 200;
  parameter STDBY_ENABLE = "DISABLED";
  parameter REFIN_RESET = "DISABLED";
  parameter SYNC_ENABLE = "DISABLED";
  parameter INT_LOCK_STICKY = "ENABLED";
  parameter DPHASE_SOURCE = "DISABLED";
  parameter PLLRST_ENA = "DISABLED";
  parameter INTFB_WAKE = "DISABLED";
  reg [4:0] lock_count = 5'd0;
  always @(posedge CLKI)
    if (!lock_count[4])
      lock_count <= lock_count + 5'd1;
  assign CLKOP = CLKI;
  assign LOCK = lock_count[4];
  assign INTLOCK = lock_count[4];
  assign {CLKOS, CLKOS2, CLKOS3, REFCLK, CLKINTFB} = 5'b0;
endmodule

module SGSR(input GSR, CLK);
endmodule

// TRELLIS_IO without tristates (Yosys's drives z onto an input pad, which Verilator refuses on
// a top-level input): an input passes its pad to O, an output drives its pad from I. The
// board's outputs are never tristated (T unconnected).
module TRELLIS_IO(inout B, input I, input T, output O);
  parameter DIR = "INPUT";
  generate
    if (DIR == "INPUT")
      assign O = B;
    else if (DIR == "OUTPUT") begin
      assign B = I;
      assign O = 1'b0;
    end else begin
      initial begin
        $display("TRELLIS_IO %m: only DIR INPUT and OUTPUT are modelled, not %s", DIR);
        $finish;
      end
    end
  endgenerate
endmodule
