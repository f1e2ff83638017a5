# a program without its lclock.toml
