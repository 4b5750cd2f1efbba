from ioc_cli import main

main()
