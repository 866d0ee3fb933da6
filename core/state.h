/* core/state.h — step records on the host: the record text (journal_text.h), one recipe's journal
 * (journal.h) and the state dir that holds them (statedir.h). */
#ifndef NI_STATE_H
#define NI_STATE_H

#include "journal.h"
#include "journal_text.h"
#include "statedir.h"

#endif
