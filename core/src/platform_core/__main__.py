from platform_core.cli import main

main()
