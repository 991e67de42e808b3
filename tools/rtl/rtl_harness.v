// refq RTL harness: every unit the cocotb-driven RtlBackend checks, behind one selector.
//
// sel          unit
// 0..3         requant_tflite_double, output int8 / uint8 / int16 / int4
// 16 + 4*r + f requant_dyadic, rounding r (0 half_even, 1 half_away, 2 half_up, 3 floor,
//              4 ceil, 5 trunc), output format f as above
// 64           igelu_ibert
// y is the selected unit's output sign- or zero-extended to 64 bits. Combinational.
module rtl_harness (
    input  wire        [7:0]  sel,
    input  wire signed [31:0] x,
    input  wire signed [31:0] multiplier,   // TFLite M, or dyadic b
    input  wire signed [7:0]  shift,        // TFLite shift, or dyadic c (0..63)
    input  wire signed [31:0] zero_point,
    input  wire signed [31:0] b_int,
    input  wire signed [31:0] c_int,
    input  wire signed [31:0] shift_int,
    input  wire        [4:0]  erf_shift,
    output reg  signed [63:0] y
);
    wire [63:0] outs [0:64];

    genvar f, r;
    generate
        for (f = 0; f < 4; f = f + 1) begin : fmt
            localparam BITS = (f == 2) ? 16 : ((f == 3) ? 4 : 8);
            localparam SGN  = (f == 1) ? 0 : 1;
            wire [BITS-1:0] yd;
            requant_tflite_double #(.OUT_BITS(BITS), .OUT_SIGNED(SGN)) dbl (
                .x(x), .multiplier(multiplier), .shift(shift), .zero_point(zero_point), .y(yd)
            );
            assign outs[f] = SGN ? {{(64 - BITS){yd[BITS-1]}}, yd} : {{(64 - BITS){1'b0}}, yd};
            for (r = 0; r < 6; r = r + 1) begin : rnd
                localparam [79:0] NAME = (r == 0) ? "half_even" : (r == 1) ? "half_away" :
                                         (r == 2) ? "half_up"   : (r == 3) ? "floor" :
                                         (r == 4) ? "ceil"      : "trunc";
                wire [BITS-1:0] yq;
                requant_dyadic #(.ROUNDING(NAME), .OUT_BITS(BITS), .OUT_SIGNED(SGN)) dy (
                    .x(x), .b(multiplier), .c(shift[5:0]), .zero_point(zero_point), .y(yq)
                );
                assign outs[16 + 4 * r + f] =
                    SGN ? {{(64 - BITS){yq[BITS-1]}}, yq} : {{(64 - BITS){1'b0}}, yq};
            end
        end
    endgenerate

    wire signed [63:0] gelu_out;
    igelu_ibert gelu (
        .q(x), .b_int(b_int), .c_int(c_int), .shift_int(shift_int), .erf_shift(erf_shift),
        .out(gelu_out)
    );
    assign outs[64] = gelu_out;

    always @* y = outs[sel];
endmodule
