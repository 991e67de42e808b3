// refq RTL model: I-BERT i-GELU datapath (refq kernel gelu.ibert), combinational.
//
//   a    = min(|q|, -b_int)
//   y    = sgn(q) * ((a + b_int)^2 + c_int)      must fit int32 (refq checks; assumed here)
//   y    = y >>> erf_shift                       floor (arithmetic shift)
//   out  = q * (y + shift_int)                   exact, 64-bit two's complement
//
// Ports: q int32 (scale S), b_int in [-2^15, -1], c_int int32 < 0, shift_int int32 <= 0,
// erf_shift 0..30; out int64 (scale S*S_erf/2). refq additionally checks out against
// int<out_bits>; the RTL returns the exact product, which equals refq's value whenever
// refq accepts the input. Same arithmetic as refq.ops.gelu.gelu_ibert.
module igelu_ibert (
    input  wire signed [31:0] q,
    input  wire signed [31:0] b_int,
    input  wire signed [31:0] c_int,
    input  wire signed [31:0] shift_int,
    input  wire        [4:0]  erf_shift,
    output reg  signed [63:0] out
);
    reg signed [32:0] absq, nb, a;
    reg signed [33:0] t;
    reg signed [67:0] poly, y, ys;
    reg signed [67:0] wide;

    always @* begin
        absq = (q < 0) ? -$signed({q[31], q}) : $signed({q[31], q});
        nb   = -$signed({b_int[31], b_int});
        a    = (absq < nb) ? absq : nb;
        t    = a + b_int;
        poly = t * t + c_int;
        if (q > 0)
            y = poly;
        else if (q < 0)
            y = -poly;
        else
            y = 68'sd0;
        ys   = y >>> erf_shift;
        wide = q * (ys + shift_int);
        out  = wide[63:0];
    end
endmodule
