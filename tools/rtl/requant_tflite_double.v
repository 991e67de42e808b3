// refq RTL model: TFLite double-rounding requantizer, int32 accumulator -> int<OUT_BITS>
// (int8 by default; OUT_SIGNED = 0 gives uint<OUT_BITS>).
//
//   y = saturate(RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x << left, M),
//                                         right) + zp)
//   left = max(shift, 0), right = max(-shift, 0)
//
// Bit-exact to gemmlowp fixedpoint.h / TFLite MultiplyByQuantizedMultiplier (see refq's
// refq/intmath/fixedpoint.py). Combinational. x << left must fit 32 bits (the C++ code
// has the same precondition). Defining REFQ_NEGATIVE_CONTROL breaks the rounding on
// purpose (negative ties round toward +inf), for the test that proves the testbench can fail.
module requant_tflite_double #(
    parameter OUT_BITS   = 8,                // 2..32
    parameter OUT_SIGNED = 1                 // 1: int<OUT_BITS>, 0: uint<OUT_BITS>
) (
    input  wire signed [31:0] x,
    input  wire signed [31:0] multiplier,   // 0 or in [2^30, 2^31)
    input  wire signed [7:0]  shift,        // [-31, 30]
    input  wire signed [31:0] zero_point,
    output reg  [OUT_BITS-1:0] y    // two's complement if OUT_SIGNED
);
    reg        [4:0]  left, right;
    reg signed [31:0] xs;
    reg signed [63:0] ab, nudged;
    reg signed [31:0] high;               // SaturatingRoundingDoublingHighMul result
    reg signed [31:0] mask, remainder, threshold, divided;
    reg signed [33:0] with_zp;
    localparam signed [33:0] OMAX = OUT_SIGNED ? ((34'sd1 <<< (OUT_BITS - 1)) - 34'sd1)
                                               : ((34'sd1 <<< OUT_BITS) - 34'sd1);
    localparam signed [33:0] OMIN = OUT_SIGNED ? -(34'sd1 <<< (OUT_BITS - 1)) : 34'sd0;

    always @* begin
        left  = (shift > 0) ? shift[4:0] : 5'd0;
        right = (shift < 0) ? (-shift) : 5'd0;
        xs    = x <<< left;
        ab    = $signed(xs) * $signed(multiplier);
        nudged = ab + ((ab >= 0) ? 64'sd1073741824 : (64'sd1 - 64'sd1073741824));
        // division by 2^31 truncating toward zero
        if (nudged >= 0)
            high = nudged >>> 31;
        else
            high = -((-nudged) >>> 31);
        if (xs == 32'sh80000000 && multiplier == 32'sh80000000)
            high = 32'sh7fffffff;
        // RoundingDivideByPOT(high, right): ties away from zero
        mask      = (32'sd1 <<< right) - 32'sd1;
        remainder = high & mask;
`ifdef REFQ_NEGATIVE_CONTROL
        threshold = mask >>> 1;
`else
        threshold = (mask >>> 1) + ((high < 0) ? 32'sd1 : 32'sd0);
`endif
        divided   = (high >>> right) + ((remainder > threshold) ? 32'sd1 : 32'sd0);
        with_zp   = divided + zero_point;
        if (with_zp > OMAX)
            y = OMAX[OUT_BITS-1:0];
        else if (with_zp < OMIN)
            y = OMIN[OUT_BITS-1:0];
        else
            y = with_zp[OUT_BITS-1:0];
    end
endmodule
