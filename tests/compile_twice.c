/* compile_twice.c - stb rule 1: include pristine.h without the switch, then with
   it, then with it again; the third include must emit nothing (a second copy of
   the implementation would not compile). A file that includes pristine.h before
   defining the switch must ask for the POSIX/GNU declarations itself. */
#define _GNU_SOURCE 1
#include "../pristine.h"
#define PRISTINE_IMPLEMENTATION
#include "../pristine.h"
#include "../pristine.h"
