from cassette_proxy.cli import main

main()
