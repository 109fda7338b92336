// A Verilated tsp_top driven from C++ alone, no Python and no VPI: the host-port
// transactions of a script (written by opentsp.verif.harness) performed cycle by cycle.
//
// Script, one command per line (numbers in hexadecimal):
//   reset          rst high for two cycles, then one idle cycle (the cocotb driver's reset)
//   w ADDR VALUE   write a host word: the strobe is sampled at the next rising edge
//   r ADDR...      read words back to back, one per cycle; prints "r VALUE..." in one line
//   run MAX        free-run until done rises (at most MAX cycles, decimal), then one cycle;
//                  prints "run CYCLES SECONDS" (CYCLES: edges from the start write's to done's, or
//                  "run timeout MAX SECONDS")
//   end NAME       prints "end NAME" (the script's programs are told apart by it)
// The harness changes inputs just after a rising edge, as the cocotb driver does.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>

#include "Vtsp_top.h"
#include "verilated.h"

namespace {

struct Harness {
    VerilatedContext context;
    std::unique_ptr<Vtsp_top> top{new Vtsp_top{&context}};

    // One clock period: the falling half, then the rising edge.
    void cycle() {
        top->clk = 0;
        top->eval();
        top->clk = 1;
        top->eval();
    }
    void idle() {
        top->host_wen = 0;
        top->host_ren = 0;
        top->host_addr = 0;
        top->host_wdata = 0;
    }
};

bool fail(const char* what) {
    std::fprintf(stderr, "tsp_harness: %s\n", what);
    return false;
}

bool run_script(Harness& h, FILE* in) {
    char command[64];
    while (std::fscanf(in, "%63s", command) == 1) {
        if (!std::strcmp(command, "reset")) {
            h.idle();
            h.top->rst = 1;
            h.cycle();
            h.cycle();
            h.top->rst = 0;
            h.cycle();
        } else if (!std::strcmp(command, "w")) {
            unsigned addr, value;
            if (std::fscanf(in, "%x %x", &addr, &value) != 2) return fail("w needs ADDR VALUE");
            h.top->host_addr = addr;
            h.top->host_wdata = value;
            h.top->host_wen = 1;
            h.cycle();
            h.top->host_wen = 0;
        } else if (!std::strcmp(command, "r")) {
            // addresses up to the end of the line; each read's data is valid in the cycle
            // after its strobe, while the next read is strobed
            unsigned addr;
            std::fputs("r", stdout);
            int c;
            bool first = true;
            while ((c = std::fgetc(in)) != '\n' && c != EOF) {
                if (c == ' ') continue;
                std::ungetc(c, in);
                if (std::fscanf(in, "%x", &addr) != 1) return fail("r needs addresses");
                if (first) {
                    h.top->host_ren = 1;
                    h.top->host_addr = addr;
                    h.cycle();
                    first = false;
                } else {
                    h.top->host_addr = addr;
                    if (!h.top->host_rvalid) return fail("host_rvalid low after a read");
                    std::printf(" %x", static_cast<unsigned>(h.top->host_rdata));
                    h.cycle();
                }
            }
            if (!first) {
                h.top->host_ren = 0;
                if (!h.top->host_rvalid) return fail("host_rvalid low after a read");
                std::printf(" %x", static_cast<unsigned>(h.top->host_rdata));
                h.cycle();
            }
            std::fputs("\n", stdout);
        } else if (!std::strcmp(command, "run")) {
            unsigned long long max_cycles;
            if (std::fscanf(in, "%llu", &max_cycles) != 1) return fail("run needs MAX");
            auto start = std::chrono::steady_clock::now();
            unsigned long long cycles = 0;
            bool done_before = h.top->done;
            // done rises at the edge that ends the last running cycle
            while (cycles < max_cycles) {
                h.cycle();
                ++cycles;
                if (h.top->done && !done_before) break;
                done_before = h.top->done;
            }
            double seconds = std::chrono::duration<double>(
                std::chrono::steady_clock::now() - start).count();
            if (h.top->done && !done_before) {
                h.cycle();
                std::printf("run %llu %.6f\n", cycles, seconds);
            } else {
                std::printf("run timeout %llu %.6f\n", max_cycles, seconds);
            }
        } else if (!std::strcmp(command, "end")) {
            char name[256];
            if (std::fscanf(in, "%255s", name) != 1) return fail("end needs NAME");
            std::printf("end %s\n", name);
        } else {
            std::fprintf(stderr, "tsp_harness: unknown command %s\n", command);
            return false;
        }
    }
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    Harness h;
    h.context.commandArgs(argc, argv);
    FILE* in = argc > 1 ? std::fopen(argv[1], "r") : stdin;
    if (!in) return fail("cannot open the script"), 2;
    bool ok = run_script(h, in);
    h.top->final();
    std::fflush(stdout);
    return ok ? 0 : 1;
}
