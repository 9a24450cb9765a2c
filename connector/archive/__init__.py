"""The long-term archive: what is stored where, and the operations that keep it whole for decades
(``lre-bridge archive verify | migrate | lock | renew | record``)."""
