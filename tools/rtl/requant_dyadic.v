// refq RTL model: dyadic requantizer (I-ViT / HAWQ), int32 accumulator -> int<OUT_BITS>.
//
//   y = saturate(round_ROUNDING(x * b / 2^c) + zero_point)
//
// x int32, b in [0, 2^31) (bit 31 must be 0), c in 0..63 (a right shift), zero_point int32.
// The product x*b (< 2^62 in magnitude) is exact in 65 bits; the quotient is rounded from
// the floor quotient q = (x*b) >>> c and the remainder r = (x*b) & (2^c - 1) >= 0:
//   floor      q
//   ceil       q + (r != 0)
//   trunc      q + (r != 0 && x*b < 0)
//   half_up    q + (r >= 2^(c-1))                           ties toward +inf
//   half_away  q + (r > 2^(c-1) || (r == 2^(c-1) && x*b >= 0))   ties away from zero
//   half_even  q + (r > 2^(c-1) || (r == 2^(c-1) && q odd))      ties to even
// Same rules as refq.intmath.round_shift. Saturation to [OMIN, OMAX] of the output format.
// Combinational, Verilog-2005. ROUNDING is a string parameter; an unknown name stops the
// simulation at time 0.
module requant_dyadic #(
    parameter ROUNDING   = "half_even",
    parameter OUT_BITS   = 8,                // 2..32
    parameter OUT_SIGNED = 1                 // 1: int<OUT_BITS>, 0: uint<OUT_BITS>
) (
    input  wire signed [31:0] x,
    input  wire        [31:0] b,             // multiplier, [0, 2^31)
    input  wire        [5:0]  c,             // right shift, 0..63
    input  wire signed [31:0] zero_point,
    output reg  [OUT_BITS-1:0] y             // two's complement if OUT_SIGNED
);
    localparam signed [66:0] OMAX = OUT_SIGNED ? ((67'sd1 <<< (OUT_BITS - 1)) - 67'sd1)
                                               : ((67'sd1 <<< OUT_BITS) - 67'sd1);
    localparam signed [66:0] OMIN = OUT_SIGNED ? -(67'sd1 <<< (OUT_BITS - 1)) : 67'sd0;
    localparam IS_FLOOR = (ROUNDING == "floor");
    localparam IS_CEIL  = (ROUNDING == "ceil");
    localparam IS_TRUNC = (ROUNDING == "trunc");
    localparam IS_HUP   = (ROUNDING == "half_up");
    localparam IS_HAWAY = (ROUNDING == "half_away");
    localparam IS_HEVEN = (ROUNDING == "half_even");

    initial begin
        if (!(IS_FLOOR || IS_CEIL || IS_TRUNC || IS_HUP || IS_HAWAY || IS_HEVEN)) begin
            $display("requant_dyadic: unknown ROUNDING parameter");
            $finish;
        end
    end

    reg signed [64:0] prod, q;
    reg        [64:0] mask, r, half;
    reg               neg, nz, up;
    reg signed [66:0] rounded;

    always @* begin
        prod = $signed(x) * $signed({1'b0, b});
        q    = prod >>> c;
        mask = (65'd1 << c) - 65'd1;
        r    = prod & mask;
        half = (c == 6'd0) ? 65'd0 : (65'd1 << (c - 6'd1));
        neg  = prod[64];
        nz   = (r != 65'd0);
        if (IS_CEIL)
            up = nz;
        else if (IS_TRUNC)
            up = nz & neg;
        else if (IS_HUP)
            up = (c != 6'd0) && (r >= half);
        else if (IS_HAWAY)
            up = (c != 6'd0) && ((r > half) || ((r == half) && !neg));
        else if (IS_HEVEN)
            up = (c != 6'd0) && ((r > half) || ((r == half) && q[0]));
        else
            up = 1'b0;
        rounded = q + (up ? 67'sd1 : 67'sd0) + zero_point;
        if (rounded > OMAX)
            y = OMAX[OUT_BITS-1:0];
        else if (rounded < OMIN)
            y = OMIN[OUT_BITS-1:0];
        else
            y = rounded[OUT_BITS-1:0];
    end
endmodule
