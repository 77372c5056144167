// main: the weft-worker binary: the worker with its built-in step types.
// Everything lives in the library (worker_main.c), so that programs that
// embed the worker with step types of their own behave the same.
#include "worker.h"

int
main(int argc, char **argv)
{
	return (weft_worker_main(argc, argv, NULL, 0));
}
