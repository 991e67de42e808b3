// refq reference DUT for the streaming testbench: the residual datapath of an encoder block.
//
//   proj = saturate_P(round(((acc - rq_in_zp) * rq_mult[c]) / 2^rq_shift[c]) + rq_out_zp)
//          refq kernel requantize.dyadic, per output channel c, rounding half_even
//   sum  = saturate_S(round((res  - a_zp) * a_mult / 2^a_shift)
//                   + round((proj - b_zp) * b_mult / 2^b_shift) + out_zp)
//          refq kernel add.ivit (each branch rounded on its own), rounding half_even
//
// One element per beat, channel-fastest (row-major (tokens, C) order): the channel index is
// a counter modulo C. Streams use valid/ready: a beat moves when valid and ready are both
// high at a rising clock edge. The DUT holds one output beat (in_ready = !out_valid ||
// out_ready), so the testbench's back-pressure stalls the input.
//
// Configuration (before streaming, while no beat is in flight): cfg_we writes cfg_data to
//   cfg_sel 0: rq_mult[cfg_addr]   (unsigned, < 2^31)      1: rq_shift[cfg_addr] (0..63)
//   cfg_sel 2: scalar cfg_addr = 0 rq_in_zp, 1 rq_out_zp, 2 a_mult, 3 a_shift, 4 a_zp,
//              5 b_mult, 6 b_shift, 7 b_zp, 8 out_zp   (two's complement, 32 bits)
//
// Widths: acc - rq_in_zp fits 33 bits, times a 31-bit multiplier: 64 bits; every product is
// formed in 96 bits, so no intermediate can overflow (shifts at most 63).
// Verilog-2005; simulated under Icarus Verilog and Verilator by tools/rtl/stream.
`timescale 1ns / 1ps

module residual_stream #(
    parameter integer C = 64,       // channels
    parameter integer ACC_BITS = 32,
    parameter integer RES_BITS = 20,
    parameter integer P_BITS = 16,  // proj output format: signed P_BITS
    parameter integer S_BITS = 20   // sum output format: signed S_BITS
) (
    input  wire                       clk,
    input  wire                       rst_n,
    input  wire                       cfg_we,
    input  wire [1:0]                 cfg_sel,
    input  wire [15:0]                cfg_addr,
    input  wire [31:0]                cfg_data,
    input  wire                       in_valid,
    output wire                       in_ready,
    input  wire signed [ACC_BITS-1:0] in_acc,
    input  wire signed [RES_BITS-1:0] in_res,
    output reg                        out_valid,
    input  wire                       out_ready,
    output reg  signed [P_BITS-1:0]   out_proj,
    output reg  signed [S_BITS-1:0]   out_sum
);
    reg [31:0] rq_mult [0:C-1];
    reg [5:0]  rq_shift [0:C-1];
    reg signed [31:0] rq_in_zp, rq_out_zp, a_mult, a_zp, b_mult, b_zp, out_zp;
    reg [5:0] a_shift, b_shift;
    reg [15:0] chan;

    // round(v / 2^s), ties to even; s in 0..63, v any 96-bit signed value
    function signed [95:0] round_half_even;
        input signed [95:0] v;
        input [5:0] s;
        reg signed [95:0] q, rem, half;
        begin
            if (s == 0) begin
                round_half_even = v;
            end else begin
                q = v >>> s;                          // floor
                rem = v - (q <<< s);                  // 0 <= rem < 2^s
                half = 96'sd1 <<< (s - 1);
                if (rem > half || (rem == half && q[0]))
                    round_half_even = q + 96'sd1;
                else
                    round_half_even = q;
            end
        end
    endfunction

    function signed [95:0] saturate;
        input signed [95:0] v;
        input integer bits;
        reg signed [95:0] hi, lo;
        begin
            hi = (96'sd1 <<< (bits - 1)) - 96'sd1;
            lo = -(96'sd1 <<< (bits - 1));
            saturate = v > hi ? hi : (v < lo ? lo : v);
        end
    endfunction

    wire signed [95:0] acc_x = $signed(in_acc) - rq_in_zp;
    wire signed [95:0] rq_prod = acc_x * $signed({1'b0, rq_mult[chan]});
    wire signed [95:0] proj_full = round_half_even(rq_prod, rq_shift[chan]) + rq_out_zp;
    wire signed [95:0] proj_sat = saturate(proj_full, P_BITS);
    wire signed [95:0] res_x = $signed(in_res) - a_zp;
    wire signed [95:0] proj_x = proj_sat - b_zp;
    wire signed [95:0] a_prod = res_x * a_mult;
    wire signed [95:0] b_prod = proj_x * b_mult;
    wire signed [95:0] ya = round_half_even(a_prod, a_shift);
    wire signed [95:0] yb = round_half_even(b_prod, b_shift);
    wire signed [95:0] sum_sat = saturate(ya + yb + out_zp, S_BITS);

    assign in_ready = !out_valid || out_ready;

    always @(posedge clk) begin
        if (!rst_n) begin
            out_valid <= 1'b0;
            chan <= 16'd0;
        end else begin
            if (cfg_we) begin
                case (cfg_sel)
                    2'd0: rq_mult[cfg_addr] <= cfg_data;
                    2'd1: rq_shift[cfg_addr] <= cfg_data[5:0];
                    default: case (cfg_addr)
                        16'd0: rq_in_zp <= cfg_data;
                        16'd1: rq_out_zp <= cfg_data;
                        16'd2: a_mult <= cfg_data;
                        16'd3: a_shift <= cfg_data[5:0];
                        16'd4: a_zp <= cfg_data;
                        16'd5: b_mult <= cfg_data;
                        16'd6: b_shift <= cfg_data[5:0];
                        16'd7: b_zp <= cfg_data;
                        default: out_zp <= cfg_data;
                    endcase
                endcase
            end
            if (in_valid && in_ready) begin
                out_proj <= proj_sat[P_BITS-1:0];
                out_sum <= sum_sat[S_BITS-1:0];
                out_valid <= 1'b1;
                chan <= (chan == C - 1) ? 16'd0 : chan + 16'd1;
            end else if (out_ready) begin
                out_valid <= 1'b0;
            end
        end
    end
endmodule
