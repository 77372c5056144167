// trun: checks over a run of the model (coordinator/model/run.c) that
// several unit tests make.
#ifndef WEFT_TEST_TRUN_H
#define WEFT_TEST_TRUN_H

#include "run.h"

// weft_t_expect_input_text checks that weft_run_step_input_text writes
// for step i of r, byte for byte, what dumping weft_run_step_input's
// document without its input and params gives.
void weft_t_expect_input_text(const weft_run *r, long i);

#endif
