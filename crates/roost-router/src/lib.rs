//! Sans-IO subscription trie, shared subscription groups and retained-message index.
