"""The LM behind compression and the judgements beside it: one client, the compressor base,
answer repair, scoring, model loading, and the child process native code runs in."""
