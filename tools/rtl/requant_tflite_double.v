// refq RTL model: TFLite double-rounding requantizer, int32 accumulator -> int8.
//
//   y = saturate_int8(RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x << left, M),
//                                         right) + zp)
//   left = max(shift, 0), right = max(-shift, 0)
//
// Bit-exact to gemmlowp fixedpoint.h / TFLite MultiplyByQuantizedMultiplier (see refq's
// refq/intmath/fixedpoint.py). Combinational. x << left must fit 32 bits (the C++ code
// has the same precondition). Defining REFQ_NEGATIVE_CONTROL breaks the rounding on
// purpose (negative ties round toward +inf), for the test that proves the testbench can fail.
module requant_tflite_double (
    input  wire signed [31:0] x,
    input  wire signed [31:0] multiplier,   // 0 or in [2^30, 2^31)
    input  wire signed [7:0]  shift,        // [-31, 30]
    input  wire signed [31:0] zero_point,
    output reg  signed [7:0]  y
);
    reg        [4:0]  left, right;
    reg signed [31:0] xs;
    reg signed [63:0] ab, nudged;
    reg signed [31:0] high;               // SaturatingRoundingDoublingHighMul result
    reg signed [31:0] mask, remainder, threshold, divided;
    reg signed [33:0] with_zp;

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
        if (with_zp > 127)
            y = 8'sd127;
        else if (with_zp < -128)
            y = -8'sd128;
        else
            y = with_zp[7:0];
    end
endmodule
