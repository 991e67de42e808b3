// Pure-Verilog testbench: reads one refq golden requantization case exported with
// `refq golden export DIR --format hex` and checks requant_tflite_double against it.
//
//   iverilog -g2005 -o tb.vvp -DCASE_DIR=\"path/to/case\" -DN=<elements> \
//       tools/rtl/requant_tflite_double.v tools/rtl/tb_requant_golden.v && vvp tb.vvp
//
// Prints "REFQ-TB PASS <n>" or "REFQ-TB FAIL <mismatches> of <n>" as its last line.
`timescale 1ns/1ps
module tb_requant_golden;
    reg [31:0] x_mem [0:`N-1];
    reg [7:0]  y_mem [0:`N-1];
    reg [31:0] m_mem [0:0];
    reg [7:0]  s_mem [0:0];
    reg [31:0] zp_mem [0:0];

    reg  signed [31:0] x;
    wire signed [7:0]  y;
    integer i, errors;

    requant_tflite_double dut (
        .x(x), .multiplier(m_mem[0]), .shift(s_mem[0]), .zero_point(zp_mem[0]), .y(y)
    );

    initial begin
        $readmemh({`CASE_DIR, "/x.hex"}, x_mem);
        $readmemh({`CASE_DIR, "/y.hex"}, y_mem);
        $readmemh({`CASE_DIR, "/multiplier.hex"}, m_mem);
        $readmemh({`CASE_DIR, "/shift.hex"}, s_mem);
        $readmemh({`CASE_DIR, "/output_zero_point.hex"}, zp_mem);
        errors = 0;
        for (i = 0; i < `N; i = i + 1) begin
            x = x_mem[i];
            #1;
            if (y !== y_mem[i]) begin
                if (errors < 5)
                    $display("MISMATCH at %0d: x=%0d rtl=%0d golden=%0d", i, $signed(x),
                             $signed(y), $signed(y_mem[i]));
                errors = errors + 1;
            end
        end
        if (errors == 0)
            $display("REFQ-TB PASS %0d", `N);
        else
            $display("REFQ-TB FAIL %0d of %0d", errors, `N);
        $finish;
    end
endmodule
