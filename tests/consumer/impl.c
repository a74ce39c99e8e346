/* The one translation unit with the implementation (see main.c). */
#define PRISTINE_IMPLEMENTATION
#include <pristine.h>
