// SQLITE_TRANSIENT is a cast macro (a destructor pointer of -1) that Swift
// cannot import; the wrapper hands it over as a real value.
#ifndef CSQLITE_SHIM_H
#define CSQLITE_SHIM_H
#include <sqlite3.h>
static inline sqlite3_destructor_type CSQLite_TRANSIENT(void) { return SQLITE_TRANSIENT; }
#endif
